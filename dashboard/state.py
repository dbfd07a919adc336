"""Shared dashboard plumbing: run roots, the path-safety check, cached loaders and figure downloads.

The views import this module and nothing else from the dashboard. It holds no analysis: tables come
from `bntt_core.runs` / `bntt_core.analysis`, models from `bntt_core.runs.load_run`, figures from
`bntt_core.viz`.

Run roots (where the dashboard looks for runs, and the only places it reads from):
    data/runs/            the runs shipped with the repository
    runs/                 the user's own runs (`bntt train --out runs/NAME`)
    $BNTT_RUN_ROOTS       more roots, separated by the OS path separator (':' on Linux)
    sidebar setting       more roots for this browser session
Set BNTT_NO_DEFAULT_RUN_ROOTS=1 to drop the first two (the tests do, to see only their fixtures), and
BNTT_LOCK_RUN_ROOTS=1 to remove the sidebar setting (for a server others can reach: the app serves on
localhost only unless told otherwise).
Any path the app is asked to read is resolved (symlinks followed) and refused unless it lies inside
one of these roots.

Caching: models and datasets with `st.cache_resource` (shared, never copied), tables and live
recordings with `st.cache_data`; every cache key carries the file's modification time, so a run that
is re-analysed or retrained shows its new data without restarting the app.

Links: what is on screen (run, layers, step, threshold, open tab, ...) lives in the URL, one query
parameter per widget named by its key, so a copied link reopens the same view. `pick_run`,
`keep_choice`, `threshold_slider` and `tabs` bind their widget themselves; a widget a view draws itself
is bound by calling `bind_url(key, ...)` just before it. A fresh tab takes each value from the link when
it is valid (an option that exists, a number in range), otherwise the widget's default; runs are named
in links as in the run picker, and a path given instead must lie inside the run roots.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import numbers
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUN_ROOTS = (REPO_ROOT / "data" / "runs", REPO_ROOT / "runs")
RUN_ROOTS_ENV = "BNTT_RUN_ROOTS"
NO_DEFAULT_ROOTS_ENV = "BNTT_NO_DEFAULT_RUN_ROOTS"
LOCK_ROOTS_ENV = "BNTT_LOCK_RUN_ROOTS"  # =1: visitors cannot add run roots in the sidebar (shared servers)
EXTRA_ROOTS_KEY = "settings_extra_run_roots"  # session-state list[str] of roots added in the sidebar
CURRENT_RUN_KEY = "current_run_path"  # session-state str: the run last picked on any view
URL_KEYS = "url_bound_keys"  # session-state tuple[str, ...]: the query parameters written on URL_PAGE
URL_PAGE = "url_bound_page"  # session-state str: the page (script hash) those parameters belong to
URL_PENDING = "url_pending_writes"  # session-state dict while a page runs inside url_batch(): its URL writes
DEFAULT_RUN_NAME = "quickstart"  # the shipped run on the embedded mnist10k: what `make run` opens on


class PathRefused(ValueError):
    """A path that is not inside any configured run root."""


# ------------------------------------------------------------------------------------ run roots
def roots_from_env(environ: dict | None = None) -> list[Path]:
    """The default roots (unless disabled) followed by those in $BNTT_RUN_ROOTS."""
    environ = os.environ if environ is None else environ
    roots: list[Path] = []
    if environ.get(NO_DEFAULT_ROOTS_ENV, "").strip() not in ("1", "true", "yes"):
        roots.extend(DEFAULT_RUN_ROOTS)
    for part in environ.get(RUN_ROOTS_ENV, "").split(os.pathsep):
        if part.strip():
            roots.append(Path(part.strip()).expanduser())
    return roots


def configured_run_roots() -> tuple[Path, ...]:
    """Every run root for this session, resolved and without duplicates, in order."""
    extra = [Path(p).expanduser() for p in st.session_state.get(EXTRA_ROOTS_KEY, [])]
    seen: dict[Path, None] = {}
    for root in [*roots_from_env(), *extra]:
        seen.setdefault(root.resolve(), None)
    return tuple(seen)


def check_inside_roots(path: str | os.PathLike, roots: tuple[Path, ...] | list[Path]) -> Path:
    """The resolved path, or PathRefused when it escapes every root ('..', symlinks, absolute paths)."""
    text = str(path).strip()
    if not text:
        raise PathRefused("no path given")
    if "\x00" in text:
        raise PathRefused("a path cannot contain a NUL character")
    from bntt_core.runs.listing import is_inside

    candidate = Path(text).expanduser()
    resolved = candidate.resolve()
    for root in roots:
        if is_inside(resolved, root):
            return resolved
    shown = ", ".join(str(r) for r in roots) or "(none configured)"
    raise PathRefused(f"refused: {text} is outside the configured run roots ({shown}). Add its folder as a "
                      f"run root (sidebar, or ${RUN_ROOTS_ENV}) to open it.")


def add_session_root(path: str) -> Path:
    """Add an existing directory as a run root for this session (the sidebar setting)."""
    candidate = Path(path.strip()).expanduser()
    if not path.strip() or not candidate.is_dir():
        raise ValueError(f"not a directory: {path!r}")
    resolved = candidate.resolve()
    extra = list(st.session_state.get(EXTRA_ROOTS_KEY, []))
    if str(resolved) not in extra:
        extra.append(str(resolved))
    st.session_state[EXTRA_ROOTS_KEY] = extra
    return resolved


def sidebar_settings() -> None:
    """The run-root setting in the sidebar: shows the roots, adds one, rescans."""
    with st.sidebar.expander("Run roots", expanded=False):
        for root in configured_run_roots():
            note = "" if root.is_dir() else " (missing)"
            st.caption(f"`{root}`{note}")
        if os.environ.get(LOCK_ROOTS_ENV, "").strip() not in ("1", "true", "yes"):
            new_root = st.text_input("Add a run root for this session (a folder of runs)",
                                     key="settings_new_run_root", placeholder="/path/to/runs")
            if st.button("Add root", key="settings_add_run_root") and new_root:
                try:
                    add_session_root(new_root)
                    clear_run_caches()
                except ValueError as error:
                    st.warning(str(error))
        if st.button("Rescan runs", key="settings_rescan_runs"):
            clear_run_caches()


# ------------------------------------------------------------------------------------- run listing
@dataclass(frozen=True)
class RunCard:
    """What a view needs to know about one run directory found under the roots."""

    path: str
    name: str
    root: str
    error: str | None
    summary: dict  # arch, dataset, norm, num_steps, kind, test_accuracy, ... (empty when broken)
    tables: tuple[str, ...]  # analysis tables present, current and with rows
    missing: tuple[str, ...] = ()  # analysis tables never computed
    stale: tuple[str, ...] = ()  # tables made for other weights / another config: to recompute
    skipped: dict = field(default_factory=dict)  # tables that do not apply to this run: {name: why}

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str:
        return self.name if self.ok else f"{self.name} (broken)"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _roots_stamp(roots: tuple[Path, ...], max_depth: int = 4) -> tuple:
    """The modification times of every folder under the roots (runs may be nested). Files are written
    atomically (a rename into their folder), so any new run, config, weights file or analysis table
    changes some folder's time and with it this stamp."""
    stamp = []

    def walk(folder: Path, depth: int) -> None:
        stamp.append((str(folder), _mtime(folder)))
        if depth >= max_depth:
            return
        try:
            children = sorted(e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(Path(child), depth + 1)

    for root in roots:
        if root.is_dir():
            walk(root, 0)
    return tuple(stamp)


@st.cache_data(show_spinner=False, max_entries=16)
def _scan(roots: tuple[str, ...], stamp: tuple) -> list[RunCard]:
    from bntt_core.runs.listing import describe_runs

    return [RunCard(**card) for card in describe_runs([Path(r) for r in roots])]


def list_runs() -> list[RunCard]:
    """Every run under the configured roots, broken ones included (with `.error`)."""
    roots = configured_run_roots()
    return _scan(tuple(str(r) for r in roots), _roots_stamp(roots))


def run_methods(cards: list[RunCard], names) -> dict[str, str]:
    """{run name: its method from its config (runs.listing.run_method)} for the `names` among the view's
    `cards`: the colours of the figures that compare runs, whatever the runs' folders are called."""
    from bntt_core.runs.listing import run_method

    wanted = set(names)
    return {c.name: run_method(c.summary) for c in cards if c.name in wanted and c.error is None}


def clear_run_caches() -> None:
    """Forget the run listing and tables (after an analysis, or when asked to rescan)."""
    _scan.clear()
    _table.clear()
    _metrics.clear()
    _config.clear()


def pick_run(cards: list[RunCard], *, key: str, label: str = "Run", require: tuple[str, ...] = (),
             container=st) -> RunCard | None:
    """A selectbox over the healthy runs (optionally only those with the `require`d tables).

    The choice is shared between views through session state, and is in the URL (?KEY=run name).
    """
    usable = [c for c in cards if c.ok and all(t in c.tables for t in require)]
    if not usable:
        return None
    paths = [c.path for c in usable]
    _claim_url_key(key)
    if _url_decides(key):  # a fresh tab: the run the link names, if it can be shown here
        linked = _linked_run(key, usable)
        if linked is not None:
            st.session_state[key] = linked
    current = st.session_state.get(CURRENT_RUN_KEY)
    if key not in st.session_state or st.session_state[key] not in paths:
        bntt = [c.path for c in usable if c.summary.get("norm") == "bntt" and c.summary.get("spiking") is not False]
        default = [c.path for c in usable if c.name == DEFAULT_RUN_NAME and c.path in bntt]
        st.session_state[key] = current if current in paths else (default or bntt or paths)[0]  # the paper's method first
    by_path = {c.path: c for c in usable}
    chosen = container.selectbox(label, paths, key=key, format_func=lambda p: by_path[p].name)
    st.session_state[CURRENT_RUN_KEY] = chosen
    _write_url(key, [_run_link(by_path[chosen], usable)])
    return by_path[chosen]


def comparable_names(cards: list[RunCard]) -> list[str]:
    """Names of the runs on the dataset that has the most methods among `cards` (the shipped ablation:
    BNTT, BN, LN, none, ANN, converted on Fashion-MNIST): the default where runs share one axis, since
    curves of different datasets side by side compare nothing."""
    from bntt_core.runs.listing import run_method

    by_dataset: dict[str, list[RunCard]] = {}
    for card in cards:
        by_dataset.setdefault(str(card.summary.get("dataset")), []).append(card)
    if not by_dataset:
        return []
    group = max(by_dataset.values(), key=lambda runs: (len({run_method(c.summary) for c in runs}), len(runs)))
    return [c.name for c in group]


def truncation_candidates(cards: list[RunCard], bntt: RunCard) -> list[RunCard]:
    """The runs whose plain truncation is the baseline for `bntt`'s early exit: spiking, without BNTT γ,
    on the same dataset and with the same T (a step is the same share of the budget), with a per-step
    accuracy table (`bntt_core.analysis.early_exit.exit_comparison` reads it at the BNTT run's exit steps)."""
    dataset, steps = bntt.summary.get("dataset"), bntt.summary.get("num_steps")
    return [c for c in cards if c.ok and c.path != bntt.path and c.summary.get("spiking") is not False
            and c.summary.get("norm") != "bntt" and c.summary.get("dataset") == dataset
            and c.summary.get("num_steps") == steps and "accuracy_by_step" in c.tables]


# ------------------------------------------------------------------------------------ cached loads
@contextlib.contextmanager
def stop_on_failure(what: str):
    """Turn a run, data or file problem (RunError, WeightsError, DataError are ValueErrors) met while
    doing `what` into one clear message that ends this view's run (or fragment); other views and
    later runs keep working."""
    try:
        yield
    except (ValueError, OSError) as problem:
        st.error(f"{what}: {problem}", icon=":material/error:")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=256)
def _table(run_path: str, name: str, stamp: float) -> pd.DataFrame | None:
    from bntt_core.runs import read_table

    return read_table(Path(run_path), name)


def table(card: RunCard, name: str) -> pd.DataFrame | None:
    """One analysis table of a run (None when it has not been computed)."""
    from bntt_core.analysis.tables import ANALYSIS_DIR, table_file

    with stop_on_failure(f"The {name} table of {card.name} cannot be read (recompute it: bntt analyze {card.path})"):
        path = check_inside_roots(card.path, configured_run_roots())
        return _table(str(path), name, _mtime(path / ANALYSIS_DIR / table_file(name)))


def tables(cards: list[RunCard], name: str) -> dict[str, pd.DataFrame]:
    """{run name: table} for the runs that have the table (current and with rows)."""
    return {card.name: table(card, name) for card in cards if name in card.tables}


@st.cache_data(show_spinner=False, max_entries=64)
def _metrics(run_path: str, stamp: float) -> pd.DataFrame | None:
    from bntt_core.runs import read_metrics

    return read_metrics(run_path)


def metrics(card: RunCard) -> pd.DataFrame | None:
    """The run's metrics.csv (one row per epoch), or None for a run that was not trained."""
    with stop_on_failure(f"The training history of {card.name} cannot be read"):
        path = check_inside_roots(card.path, configured_run_roots())
        return _metrics(str(path), _mtime(path / "metrics.csv"))


@st.cache_data(show_spinner=False, max_entries=64)
def _config(run_path: str, stamp: float) -> dict:
    from bntt_core.runs import read_config

    return read_config(run_path)


def loaded_config(card: RunCard) -> dict:
    """The run's config.json (checked for the run format)."""
    with stop_on_failure(f"The config of {card.name} cannot be read"):
        path = check_inside_roots(card.path, configured_run_roots())
        return _config(str(path), _mtime(path / "config.json"))


def _weights_stamp(path: Path) -> float:
    return max((_mtime(p) for p in path.glob("weights*")), default=0.0)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _run(run_path: str, stamp: float):
    from bntt_core.runs import load_run

    return load_run(Path(run_path), device="cpu")


def loaded_run(card: RunCard):
    """`bntt_core.runs.Run` (config, spec, info, model in eval mode), cached per weights file."""
    with stop_on_failure(f"The model of {card.name} cannot be loaded"):
        path = check_inside_roots(card.path, configured_run_roots())
        return _run(str(path), _weights_stamp(path))


@st.cache_resource(show_spinner="Loading the test images…", max_entries=4)
def _test_set(dataset_args: dict):
    from bntt_core.runs.splits import run_test_set

    # a data folder recorded on the machine that trained the run (the shipped runs name /work/shared/data)
    # is looked for where load_data looks by default when it is not here, as the notebooks do
    return run_test_set(dataset_args, ignore_missing_data_dir=True)


def _dataset_args(config: dict) -> dict:
    """The parts of a run's config.json its test set depends on (`bntt_core.runs.splits.run_test_set_sections`):
    the cache key of `_test_set`, equal for the runs evaluated on the same images, which then share one copy."""
    from bntt_core.runs.splits import run_test_set_sections

    return run_test_set_sections(config)


def test_images(card: RunCard):
    """(test ImageSet, DataInfo) the run was evaluated on: its dataset, split and max_test_images subset
    (`bntt_core.runs.splits.run_test_set`), cached per test set."""
    dataset_args = _dataset_args(loaded_config(card))
    dataset = dataset_args["data"].get("dataset")
    with stop_on_failure(f"The test images of {dataset} (the data {card.name} was trained on) are not "
                         "available here"):
        return _test_set(dataset_args)


def test_set_size(card: RunCard) -> int:
    return len(test_images(card)[0].labels)


@st.cache_data(show_spinner="Recording the spikes…", max_entries=64)
def _raster(run_path: str, stamp: float, dataset_args: dict, index: int, layer: str, neurons: tuple[int, ...],
            max_neurons: int, selection: str, seed: int) -> dict:
    from bntt_core import teaching

    run = _run(run_path, stamp)
    test, info = _test_set(dataset_args)
    example = teaching.test_example(test, info, index)
    raster = teaching.record_spike_raster(run.model, example["model_input"], layer=layer,
                                         neurons=list(neurons) or None, max_neurons=max_neurons,
                                         selection=selection, seed=seed)
    return {"raster": raster, "pixels": example["pixels"], "label": example["label"],
            "class_name": example["class_name"]}


def spike_raster(card: RunCard, *, index: int, layer: str, neurons: tuple[int, ...] = (), max_neurons: int = 48,
                 selection: str = "spread", seed: int = 0) -> dict:
    """A raster (neuron, t, spike) of `layer` for test image `index`, recorded live with a monitor on the
    run's model, plus the image (pixels, label, class name). Cached per run, image and choice."""
    dataset_args = _dataset_args(loaded_config(card))
    loaded_run(card)
    test_images(card)  # each says clearly what is missing before the recording starts
    with stop_on_failure(f"The spikes of {card.name} could not be recorded"):
        path = check_inside_roots(card.path, configured_run_roots())
        return _raster(str(path), _weights_stamp(path), dataset_args, int(index), str(layer),
                       tuple(int(n) for n in neurons), int(max_neurons), str(selection), int(seed))


@st.cache_data(show_spinner="Attacking the image…", max_entries=32)
def _perturbed(runs: tuple[tuple[str, str, float], ...], dataset_args: dict, index: int, sigma: float,
               epsilon: float, seed: int, noise_mode: str = "unclipped") -> dict:
    from bntt_core import teaching

    test, info = _test_set(dataset_args)
    example_pixels = test.images[index:index + 1]
    models = {}
    for name, path, stamp in runs:
        run = _run(path, stamp)
        models[name] = (run.model, run.info)
    return teaching.perturbation_predictions(models, example_pixels, int(test.labels[index]), sigma=sigma,
                                            epsilon=epsilon, seed=seed, class_names=list(info.class_names),
                                            noise_mode=noise_mode)


def perturbation_predictions(cards: list[RunCard], *, index: int, sigma: float, epsilon: float, seed: int = 0,
                             noise_mode: str = "unclipped") -> dict:
    """Test image `index` of the runs' dataset clean / noisy / adversarial and each run's predictions
    (`bntt_core.teaching.perturbation_predictions`, noise of `noise_mode`: unclipped, clipped or shift);
    cached per choice. The runs share one dataset."""
    roots = configured_run_roots()
    runs = []
    for card in cards:
        loaded_run(card)  # a model that cannot be loaded says so before the attack starts
        path = check_inside_roots(card.path, roots)
        runs.append((card.name, str(path), _weights_stamp(path)))
    test_images(cards[0])
    with stop_on_failure("The image could not be perturbed and classified"):
        return _perturbed(tuple(runs), _dataset_args(loaded_config(cards[0])), int(index), float(sigma),
                          float(epsilon), int(seed), str(noise_mode))


# --------------------------------------------------------------------------------------- widgets
def keep_choice(key: str, options: list, default, *, multi: bool = False, url: bool = True) -> None:
    """Seed or repair a selectbox/multiselect/select_slider's session value before the widget is drawn,
    so that a choice made for another run (options that no longer exist) falls back to `default`; call
    the widget afterwards with `key` and no default. With `url`, a fresh tab takes the choice from the
    link (?KEY=option, repeated for several; options that do not exist are ignored) and the choice is
    written back to the URL."""
    if url:
        _claim_url_key(key)
        if _url_decides(key):
            linked = _linked_choice(key, options, multi=multi)
            if linked is not None:
                st.session_state[key] = linked
    if multi:
        previous = st.session_state.get(key)
        if previous is None:
            st.session_state[key] = [v for v in default if v in options]
        else:
            kept = [v for v in previous if v in options]
            # a choice emptied by the user stays empty; one emptied by an option change falls back
            st.session_state[key] = kept if kept or not previous else [v for v in default if v in options]
    else:
        value = st.session_state.get(key, default)
        st.session_state[key] = value if value in options else default
    if url:
        chosen = st.session_state[key]
        _write_url(key, _option_texts(list(chosen) if multi else [chosen]))



def runs_with_table(cards: list[RunCard], table_name: str, *, key: str, label: str,
                    default: Callable[[list[str]], list[str]] | None = None) -> dict[str, pd.DataFrame]:
    """A multiselect of the runs among `cards` that have `table_name` → {name: table}; {} (with the view's
    one info line saying why) when no run has it or none is chosen. `default(names)`: the runs chosen
    first (default: the first)."""
    having = {c.name: c for c in cards if table_name in c.tables}
    if not having:
        st.info(f"No run has the {table_name} table yet; compute the analysis in the Runs view.")
        return {}
    names = list(having)
    keep_choice(key, names, default(names) if default else names[:1], multi=True)
    chosen = st.multiselect(label, names, key=key)
    if not chosen:
        st.info("Choose at least one run.")
    return {name: table(having[name], table_name) for name in chosen}

def threshold_slider(values: pd.Series, *, key: str, label: str = "Early-exit threshold τ (on mean γ)",
                     default: float = 0.1, low: float | None = None, high: float | None = None) -> float:
    """A γ-threshold slider whose range covers `values` (mean γ, or a threshold grid); a value kept in
    session state from another run is clamped into the new range instead of failing."""
    finite = pd.to_numeric(values, errors="coerce").dropna()
    low = 0.0 if low is None else float(low)
    high = float(finite.max()) * 1.05 if high is None and len(finite) else (1.0 if high is None else float(high))
    high = max(high, low + 1e-3)
    step = max((high - low) / 200.0, 1e-4)
    _claim_url_key(key)
    if _url_decides(key) and key in st.query_params:  # a fresh tab: the link's τ, if in range
        linked = _parse_url_value(st.query_params[key], float, None, low, high)
        if linked is not _INVALID:
            st.session_state[key] = linked
    current = float(st.session_state.get(key, default))
    st.session_state[key] = min(max(current, low), high)
    value = float(st.slider(label, min_value=low, max_value=high, step=step, key=key, format="%.3f"))
    _write_url(key, [_url_text(value)])
    return value


def tabs(labels: list[str], *, key: str, **kwargs):
    """`st.tabs` whose open tab is in the URL (?KEY=the label in lowercase words: 'γ histograms (Fig 6)'
    is gamma-histograms-fig-6; the label itself is accepted too). Lazy by default (on_change="rerun":
    only the open tab's `.open` is True); other keyword arguments go to `st.tabs`."""
    _claim_url_key(key)
    slugs = [_slug(label) or label for label in labels]
    if len(set(slugs)) < len(slugs):
        slugs = list(labels)
    if _url_decides(key) and key in st.query_params:
        linked = _find_option(st.query_params[key], labels)  # the label, or the label as a slug
        if linked is not _INVALID:
            st.session_state[key] = linked
    containers = st.tabs(labels, key=key, **{"on_change": "rerun", **kwargs})
    opened = st.session_state.get(key)
    _write_url(key, [slugs[labels.index(opened)] if opened in labels else slugs[0]])
    return containers


def bind_url(key: str, *, kind: type = str, options: list | None = None, low: float | None = None,
             high: float | None = None) -> None:
    """Put the widget `key`, drawn right after this call, in the URL: a fresh tab takes the link's value
    when it reads as `kind` (bool, int, float or str) and lies in `options` or in [low, high] (otherwise
    it is dropped and the widget shows its default), and the current value is written back on every run.
    For the widgets a view draws itself (sliders, toggles, number inputs, radios, text inputs)."""
    _claim_url_key(key)
    if _url_decides(key) and key in st.query_params:
        linked = _parse_url_value(st.query_params[key], kind, options, low, high)
        if linked is not _INVALID:
            st.session_state[key] = linked
        elif key not in st.session_state:
            del st.query_params[key]  # the widget shows its default: the URL should not say otherwise
    if key in st.session_state:
        _write_url(key, _option_texts([st.session_state[key]]))


# ------------------------------------------------------------------------------------------ links
_INVALID = object()  # a URL value that names no valid choice
_URL_WORDS = {"γ": "gamma", "τ": "tau", "σ": "sigma", "ε": "epsilon", "λ": "lambda", "θ": "theta", "→": "to"}


def _slug(label: str) -> str:
    """A label as lowercase words joined by '-', Greek letters spelled out: a readable URL value."""
    for symbol, word in _URL_WORDS.items():
        label = label.replace(symbol, f" {word} ")
    return "-".join(re.findall(r"[a-z0-9]+", label.lower()))


def _run_context():
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return get_script_run_ctx()


def _current_page() -> str:
    ctx = _run_context()
    return ctx.page_script_hash if ctx is not None else ""


def _url_decides(key: str) -> bool:
    """Whether the URL sets `key` in this run: when the session has no value for it (a fresh tab, or a
    widget shown again), and when the browser's Back or Forward button brought back an earlier URL."""
    if key not in st.session_state:
        return True
    ctx = _run_context()
    return bool(getattr(ctx, "is_history_navigation", False)) and key in st.query_params


def _claim_url_key(key: str) -> None:
    """Record `key` as a query parameter of the page being run. The first one claimed after a switch of
    page drops the parameters of the page left: the browser clears them itself when the page changes,
    but they must never seed this page's widgets (nor outlive it in the test harness's URL)."""
    page = _current_page()
    owned = tuple(st.session_state.get(URL_KEYS, ()))
    if st.session_state.get(URL_PAGE, page) != page:
        for stale in owned:
            if stale in st.query_params:
                del st.query_params[stale]
        owned = ()
    st.session_state[URL_PAGE] = page
    if key not in owned:
        st.session_state[URL_KEYS] = (*owned, key)


@contextlib.contextmanager
def url_batch():
    """Run a page with its URL writes collected and sent as one change when it ends (also by st.stop or
    an error): the browser then records one history entry per run, not one per widget, and Back steps
    through views. Without it (and in a fragment's own reruns) each write is sent at once."""
    st.session_state[URL_PENDING] = {}
    try:
        yield
    finally:
        pending = st.session_state.pop(URL_PENDING, None)
        if pending:
            st.query_params.update(pending)


def _write_url(key: str, texts: list[str]) -> None:
    """Set ?key=... (repeated for several values; an empty choice is ?key= since an absent key means the
    default), sending nothing when the URL already says so."""
    texts = [str(t) for t in texts] or [""]
    pending = st.session_state.get(URL_PENDING)
    if pending is not None and getattr(_run_context(), "fragment_ids_this_run", None):
        pending = None  # a fragment's own rerun: the page's url_batch has ended
    if pending is not None and key in pending:
        current = pending[key]
    else:
        current = st.query_params.get_all(key) if key in st.query_params else None
    if current == texts:
        return
    if pending is not None:
        pending[key] = texts
    else:
        st.query_params[key] = texts[0] if len(texts) == 1 else texts


def _url_text(value) -> str:
    """A value as the URL writes it: booleans as true/false, floats with 6 significant digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.6g}"
    return str(value)


def _run_link(card: RunCard, cards: list[RunCard]) -> str:
    """How a link names a run: by its name (as in the run picker), by its path where names clash."""
    return card.name if sum(c.name == card.name for c in cards) == 1 else card.path


def _option_texts(options: list) -> list[str]:
    """The URL texts of `options`; runs offered by path are named as the run picker names them."""
    texts = [_url_text(option) for option in options]
    if any(os.path.isabs(text) for text in texts):
        cards = [c for c in list_runs() if c.ok]
        links = {c.path: _run_link(c, cards) for c in cards}
        texts = [links.get(text, text) for text in texts]
    return texts


def _find_option(text: str, options: list, texts: list[str] | None = None):
    """The option that `text` names (its URL text, that text as a slug, or an equal number), or _INVALID."""
    texts = _option_texts(options) if texts is None else texts
    for option, option_text in zip(options, texts, strict=True):
        if text == option_text or (text and text == _slug(option_text)):
            return option
    try:
        number = float(text)
    except ValueError:
        return _INVALID
    for option in options:
        if isinstance(option, numbers.Real) and not isinstance(option, bool) and math.isclose(
                float(option), number, rel_tol=1e-6, abs_tol=1e-12):
            return option
    return _INVALID


def _linked_choice(key: str, options: list, *, multi: bool):
    """The option (a list of them with `multi`) that the URL names for `key`; None when it names none.
    Several options are repeated parameters or one comma-separated value; `?key=` is an empty choice."""
    if key not in st.query_params:
        return None
    values = st.query_params.get_all(key)
    texts = _option_texts(options)
    if not multi:
        found = _find_option(values[-1], options, texts) if values else _INVALID
        return None if found is _INVALID else found
    if all(value == "" for value in values):
        return []
    chosen: list = []
    for value in values:
        whole = _find_option(value, options, texts)
        parts = [whole] if whole is not _INVALID else [_find_option(p.strip(), options, texts)
                                                       for p in value.split(",")]
        for part in parts:
            if part is not _INVALID and part not in chosen:
                chosen.append(part)
    return chosen or None


def _parse_url_value(text: str, kind: type, options: list | None, low: float | None, high: float | None):
    """`text` read as `kind` and checked against `options` or [low, high]; _INVALID when it is not."""
    if options is not None:
        return _find_option(text, options)
    try:
        if kind is bool:
            value = {"true": True, "1": True, "yes": True, "on": True,
                     "false": False, "0": False, "no": False, "off": False}[text.strip().lower()]
        elif kind is int:
            number = float(text)
            if not number.is_integer():
                return _INVALID
            value = int(number)
        elif kind is float:
            value = float(text)
            if not math.isfinite(value):
                return _INVALID
        else:
            value = kind(text)
    except (KeyError, ValueError, TypeError, OverflowError):
        return _INVALID
    if kind is float and low is not None and high is not None:
        slack = 1e-5 * max(abs(low), abs(high), 1e-3)  # a bound written with 6 digits lands just outside
        if low - slack <= value <= high + slack:
            value = min(max(value, low), high)
    if (low is not None and value < low) or (high is not None and value > high):
        return _INVALID
    return value


def _linked_run(key: str, usable: list[RunCard]) -> str | None:
    """The path of the run that the URL names for `key` (by name, or by a path inside the run roots);
    None when it names none that this view can show. A path outside the run roots is refused with the
    same message as in the Runs view."""
    text = st.query_params.get(key, "").strip()
    if not text:
        return None
    for match in ([c.path for c in usable if c.name == text], [c.path for c in usable if c.path == text]):
        if len(match) == 1:
            return match[0]
    candidate = Path(text).expanduser() if "\x00" not in text else None
    if candidate is None or candidate.is_absolute() or ".." in candidate.parts:
        try:
            resolved = check_inside_roots(text, configured_run_roots())
        except PathRefused as refused:
            st.error(str(refused), icon=":material/block:")
            return None
        except (OSError, ValueError):
            resolved = None
        match = [c.path for c in usable if Path(c.path).resolve() == resolved]
        if match:
            return match[0]
    st.toast(f"The link's run {text!r} is not one this view can show here; showing another.",
             icon=":material/link_off:")
    return None


# ---------------------------------------------------------------------------------- figure output
@st.cache_resource(show_spinner=False)
def png_export_available() -> bool:
    """Kaleido renders PNGs offline; without it the PNG button is not offered."""
    return importlib.util.find_spec("kaleido") is not None


def figure(builder: Callable[..., Any], *args, **kwargs):
    """`builder(*args, **kwargs)` for a figure builder of `bntt_core.viz` passed itself
    (`state.figure(viz.gamma_mean_figure, df, threshold=0.1)`), cached on the builder's name and the
    arguments (DataFrames are hashed by content): a slider that returns to a value, or a second visitor,
    gets the figure without rebuilding it. The figure is shared, so it must not be changed after this call
    (st.plotly_chart copies it)."""
    return _cached_figure(f"{builder.__module__}.{builder.__qualname__}", builder, *args, **kwargs)


@st.cache_resource(show_spinner=False, max_entries=512)
def _cached_figure(builder_name: str, _builder: Callable[..., Any], *args, **kwargs):
    # keyed by the builder's dotted name: Streamlit skips the `_builder` argument (its leading underscore)
    # instead of hashing a function object by its id
    return _builder(*args, **kwargs)


def show_figure(fig, data: pd.DataFrame | dict[str, pd.DataFrame], *, key: str, file_stem: str,
                on_select=None) -> None:
    """The figure, then its data as CSV and the figure as HTML and PNG (built only when clicked).
    `on_select`: a callback run when points are clicked (the chart's selection is in
    st.session_state[f"{key}-chart"])."""
    from bntt_core import viz

    selection = {} if on_select is None else {"on_select": on_select, "selection_mode": "points"}
    st.plotly_chart(fig, key=f"{key}-chart", config={"displaylogo": False}, **selection)
    columns = st.columns(3 if png_export_available() else 2)
    columns[0].download_button("Data (CSV)", lambda: viz.figure_data(data), file_name=f"{file_stem}.csv",
                               mime="text/csv", key=f"{key}-csv", on_click="ignore", icon=":material/table:")
    columns[1].download_button("Figure (HTML)", lambda: viz.figure_to_html(fig), file_name=f"{file_stem}.html",
                               mime="text/html", key=f"{key}-html", on_click="ignore", icon=":material/code:")
    if png_export_available():
        columns[2].download_button("Figure (PNG)", lambda: _png_or_explain(fig), file_name=f"{file_stem}.png",
                                   mime="image/png", key=f"{key}-png", on_click="ignore", icon=":material/image:")


def _png_or_explain(fig) -> bytes:
    from bntt_core import viz

    png = viz.figure_to_png(fig, interactive=True)  # a page must not wait minutes: one try, 60 s, then HTML
    if png is None:
        raise RuntimeError("PNG export failed on this machine (kaleido could not render); use the HTML download")
    return png
