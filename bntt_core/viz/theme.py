"""The look every figure shares: a colour per method (Okabe–Ito: distinguishable with the common colour-vision
deficiencies and in greyscale print), a shallow → deep colour ramp per layer, one Plotly template (fonts,
background, hover), and the colour of each run of a figure (`run_colors`: its method's colour where the run
has a known method).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import plotly.colors as plotly_colors
import plotly.graph_objects as go
import plotly.io as pio

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale print.
METHOD_COLORS: dict[str, str] = {
    "bntt": "#0072B2",  # blue: the paper's method, the one every figure is about
    "bn": "#D55E00",  # vermillion: the paper's standard BN (one BN called at every step; surrogate gradient)
    "bn-joint": "#CC6677",  # rose (Tol): one BN with statistics over all T·B jointly (bntt-run/1's "bn")
    "tdbn": "#44AA99",  # teal (Tol): threshold-dependent BN (Zheng et al. 2021)
    "tebn": "#DDAA33",  # ochre (Tol): temporal effective BN (Duan et al. 2022)
    "ln": "#009E73",  # bluish green
    "none": "#7F7F7F",  # grey: no normalisation
    "ann": "#222222",  # near black: the non-spiking reference
    "converted": "#E69F00",  # orange: ANN→SNN conversion
}


METHOD_NAMES: dict[str, str] = {
    "bntt": "BNTT",
    "bn": "BN (paper: per-step batch statistics)",
    "bn-joint": "BN joint (statistics over T·B)",
    "tdbn": "tdBN",
    "tebn": "TEBN",
    "ln": "LN",
    "none": "no normalisation",
    "ann": "ANN",
    "converted": "ANN→SNN conversion",
}


# Colours for runs whose label names no known method; none of them repeats a method colour.
OTHER_RUN_COLORS = ("#CC79A7", "#56B4E9", "#882255", "#117733", "#AA4499", "#332288", "#999933")


FONT_FAMILY = "Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif"


def _build_template() -> go.layout.Template:
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.font = dict(family=FONT_FAMILY, size=14, color="#222222")
    template.layout.title = dict(font=dict(size=17), x=0.0, xanchor="left", xref="paper")
    template.layout.colorway = list(METHOD_COLORS.values()) + list(OTHER_RUN_COLORS)
    template.layout.hoverlabel = dict(font=dict(family=FONT_FAMILY, size=13))
    template.layout.legend = dict(font=dict(size=13))
    template.layout.margin = dict(l=70, r=30, t=90, b=60)
    return template


TEMPLATE = _build_template()

_TOKEN = re.compile(r"[a-z0-9]+")
_NEGATIONS = {"no", "without", "wo", "o", "non"}  # "w/o" splits into "w", "o"
_METHOD_TOKENS = (  # checked in this order: "converted" before "ann", "bntt" before "bn"
    ("converted", {"converted", "conversion", "convert", "ann2snn"}),
    ("ann", {"ann"}),
    ("bntt", {"bntt"}),
    ("tdbn", {"tdbn"}),
    ("tebn", {"tebn"}),
    ("bn-joint", {"joint", "sharedbn", "shared"}),  # before "bn": "BN joint", "BN (shared over time)"
    ("bn", {"bn", "batchnorm", "stepbn"}),
    ("ln", {"ln", "layernorm", "timeln"}),
    ("none", {"none", "nonorm"}),
)


def method_of(label: str) -> str | None:
    """The method a run label names (a key of METHOD_COLORS), or None.

    Matches whole words, case-insensitively: "BNTT", "vgg9-bntt", "C: BNTT" → bntt; "conversion (500
    steps)" → converted; "bn" → bn; "no norm" → none. A word right after "no"/"without"/"w/o" does not
    count, so "surrogate without BNTT" is not taken for BNTT.

    This reads label text, so it is the fallback for a label with no run behind it (a notebook's own
    dict of tables). Where the runs are known, their method comes from their config
    (`bntt_core.runs.listing.run_method`); pass it to `run_colors` / `energy_figure` as `methods`.
    """
    words = _TOKEN.findall(str(label).lower())
    if str(label).strip().lower() in METHOD_COLORS:
        return str(label).strip().lower()
    counted = {w for i, w in enumerate(words) if i == 0 or words[i - 1] not in _NEGATIONS}
    pairs = zip(words[:-1], words[1:], strict=True)
    if any(a in _NEGATIONS and b in ("norm", "normalisation", "normalization") for a, b in pairs):
        counted.add("none")  # "no norm", "without normalisation"
    for method, spellings in _METHOD_TOKENS:
        if counted & spellings:
            return method
    return None


def run_colors(labels: Sequence[str], methods: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per run label: the method's colour when the run has a known method (and no earlier label
    of the same method took it), else the next unused colour of OTHER_RUN_COLORS.

    `methods`: {label: method} where the runs' methods are known (e.g. from their configs); a label it
    does not hold, or every label without it, has its method read from the label text (`method_of`)."""
    colors: dict[str, str] = {}
    taken: set[str] = set()
    spare = iter(OTHER_RUN_COLORS * (len(labels) // len(OTHER_RUN_COLORS) + 1))
    for label in labels:
        method = _method(label, methods)
        if method is not None and METHOD_COLORS[method] not in taken:
            colors[label] = METHOD_COLORS[method]
        else:
            colors[label] = next(spare)
        taken.add(colors[label])
    return colors


def _method(label: str, methods: Mapping[str, str] | None) -> str | None:
    """The method of run `label`: from `methods` when it holds the label (None unless a key of
    METHOD_COLORS), else read from the label (`method_of`)."""
    if methods is not None and label in methods:
        method = str(methods[label]).strip().lower()
        return method if method in METHOD_COLORS else None
    return method_of(label)


def layer_colors(layers: Sequence[str]) -> dict[str, str]:
    """Shallow → deep as dark purple → green along Viridis (stopping short of its pale yellow end)."""
    if len(layers) == 1:
        return {layers[0]: plotly_colors.sample_colorscale("Viridis", [0.0])[0]}
    points = [0.85 * i / (len(layers) - 1) for i in range(len(layers))]
    return dict(zip(layers, plotly_colors.sample_colorscale("Viridis", points), strict=True))


def _style(fig: go.Figure, title: str, *, height: int | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title_text=title)
    if height is not None:
        fig.update_layout(height=height)
    return fig
