"""A figure out of Python: self-contained HTML (plotly.js inlined, opens offline), PNG through kaleido (a
headless Chromium kept running, waited for, retried once with a fresh one), and the data behind it as CSV.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

import pandas as pd
import plotly
import plotly.graph_objects as go

logger = logging.getLogger(__name__)


def figure_to_html(fig: go.Figure) -> str:
    """The figure as one self-contained HTML page: plotly.js is inlined, so it opens offline."""
    # auto_play off: an exported animation (Fig 6) opens at its first step, like the dashboard
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False, config={"displaylogo": False})


_PNG_SCOPE = None
_PNG_SCOPE_LOCK = threading.Lock()


def _png_scope():
    """One kaleido 0.2.1 scope (a headless Chromium kept running) pointed at plotly's bundled
    plotly.min.js: plotly ≥ 6's own `to_image` wants kaleido ≥ 1, and the scope's default plotly.js
    is a CDN URL, which is unreachable offline."""
    global _PNG_SCOPE
    with _PNG_SCOPE_LOCK:
        if _PNG_SCOPE is None:
            from kaleido.scopes.plotly import PlotlyScope

            bundled = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
            _PNG_SCOPE = PlotlyScope(plotlyjs=bundled, mathjax=False)
        return _PNG_SCOPE


def _restart_png_scope() -> None:
    """Drop the current kaleido scope and kill its browser process (without its lock, which a wedged
    transform holds): a blocked transform then returns with an error, and the next export starts afresh."""
    global _PNG_SCOPE
    with _PNG_SCOPE_LOCK:
        old, _PNG_SCOPE = _PNG_SCOPE, None
    process = getattr(old, "_proc", None)
    if process is not None and process.poll() is None:
        try:
            process.kill()
            process.wait(timeout=10)
        except Exception:  # already gone, or not killable: the next export starts a new one either way
            pass


class FigureExportError(RuntimeError):
    """A PNG that was asked for (batch export: notebooks, make figures, bntt commands) could not be made."""


BATCH_PNG_TIMEOUT_S = 600.0  # batch export waits this long per attempt (a loaded machine is slow, not broken)
INTERACTIVE_PNG_TIMEOUT_S = 60.0  # the dashboard's button: it offers the HTML download instead


def _render_png(fig: go.Figure, width: int | None, height: int | None, scale: float,
                timeout_s: float) -> tuple[bytes | None, str]:
    """One attempt: (PNG bytes, "") or (None, why)."""
    result: dict[str, object] = {}

    def render() -> None:
        try:
            # 1000 px wide unless told: kaleido's 700 px default crowds the multi-panel figures
            result["png"] = _png_scope().transform(fig, format="png", width=width or fig.layout.width or 1000,
                                                   height=height or fig.layout.height, scale=scale)
        except Exception as error:  # any failure of the external renderer is reported by the caller
            result["error"] = error

    # a thread, because a wedged browser would otherwise block the caller forever
    worker = threading.Thread(target=render, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        _restart_png_scope()  # the next export starts a fresh browser instead of queueing behind this one
        return None, f"no answer within {timeout_s:.0f} s"
    if "error" in result:
        error = result["error"]
        return None, f"{type(error).__name__}: {str(error).strip()[:300]}"
    return result["png"], ""  # type: ignore[return-value]


def figure_to_png(fig: go.Figure, *, width: int | None = None, height: int | None = None,
                  scale: float = 2.0, name: str | None = None, interactive: bool = False,
                  timeout_s: float | None = None) -> bytes | None:
    """The figure as PNG bytes via kaleido.

    Batch export (the default: notebooks, `make figures`, bntt commands) waits for the renderer
    (BATCH_PNG_TIMEOUT_S per attempt), and if it fails or gives no answer retries once with a fresh
    browser; a PNG that still cannot be made raises FigureExportError naming the figure (`name`).
    interactive=True (the dashboard's PNG button) tries once within INTERACTIVE_PNG_TIMEOUT_S and
    returns None with a logged warning instead, so that the page can offer the HTML download.
    """
    if interactive:
        png, why = _render_png(fig, width, height, scale, timeout_s or INTERACTIVE_PNG_TIMEOUT_S)
        if png is None:
            logger.warning("PNG export failed (%s); offering HTML only", why)
        return png
    reasons = []
    for attempt in range(2):
        png, why = _render_png(fig, width, height, scale, timeout_s or BATCH_PNG_TIMEOUT_S)
        if png is not None:
            return png
        reasons.append(why)
        if attempt == 0:
            logger.warning("PNG export of %s failed (%s); retrying once with a fresh renderer",
                           name or "a figure", why)
            _restart_png_scope()
    raise FigureExportError(f"the PNG of figure {name or '(unnamed)'} could not be made: first try {reasons[0]}; "
                            f"retry with a fresh renderer {reasons[1]}")


def figure_data(data: pd.DataFrame | Mapping[str, pd.DataFrame], *, label_column: str = "run") -> bytes:
    """The data behind a figure as UTF-8 CSV bytes. A dict of tables (several runs, or the tables of
    one figure) becomes one table with the dict key in a first column named `label_column`."""
    if isinstance(data, pd.DataFrame):
        table = data
    elif isinstance(data, Mapping):
        if not data:
            raise ValueError("no tables given to export")
        parts = []
        for label, df in data.items():
            if not isinstance(df, pd.DataFrame):
                raise TypeError(f"entry {label!r} must be a DataFrame; got {type(df).__name__}")
            part = df.drop(columns=[label_column], errors="ignore")
            part.insert(0, label_column, str(label))
            parts.append(part)
        table = pd.concat(parts, ignore_index=True)
    else:
        raise TypeError(f"expected a DataFrame or a dict of DataFrames; got {type(data).__name__}")
    return table.to_csv(index=False).encode("utf-8")
