"""Dashboard speed: how long a view takes to open and how long a slider move or a click takes to re-render.

Targets (issue 6), with the analysis present: moving the early-exit or step slider re-renders in
< 300 ms, and a view opens in < 3 s. The 300 ms target is also applied to the γ explorer's and the
spikes view's other interactions (each redraws a figure):

  γ heatmap colour range          "Mean γ heatmap" tab: the colour-range radio (gamma_heat_scale) toggled
  γ heatmap click → histogram     a click on a heatmap cell: the "γ histograms (Fig 6)" tab opens with
                                  that layer and step (a different cell each time)
  γ distributions ridge ↔ bands   "Distributions over time" tab: the "Show" radio (gamma_dist_kind)
  γ training: step slider         "Through training" tab, "Histograms": the step slider (gamma_train_step)
  γ training: threshold slider    "Through training" tab, "Exit step": the τ slider (gamma_train_threshold)
  spikes Fig 3 show               spikes view, "BN input (Fig 3)" tab: the "Show" radio (spikes_bn_view),
                                  round its three options (ridge → bands → chosen steps → ridge …)

These run on one analysed BNTT run with the γ and BN-input tables, one with a γ history
(RUN/gamma_history.csv, which "Through training" needs) first and the shipped quickstart first among
those; without a history the two training sliders are skipped (said in the table). Two ways of
measuring, both printed:

  server   `streamlit.testing.v1.AppTest` runs the app script exactly as the server does for one
           browser session; the time is one script run (what the server spends before the browser
           can draw). "first open" is the view's first run in this process (its tables, model and
           figures not cached yet; torch and bntt_core are already imported); "later opens" the
           median over new sessions once the caches are filled, as for every later visitor. A slider:
           --repeats moves, each to another value (spread over its range, or the next step: its
           figure is built, unless the steps come round again). A radio: --repeats toggles after one
           untimed toggle (as in the browser). The heatmap click: the chart's selection set as the
           browser sends it (a full page run: it switches the tab), --repeats clicks after one untimed
           click, each on another cell, back on the heatmap tab in between.
  browser  (--browser; needs Chromium — `chromium` on the PATH, or $BNTT_CHROMIUM — and the
           playwright package) a real `streamlit run` on a free localhost port and headless
           Chromium. A view: from navigation until the app has finished its run and drawn (script
           idle, no skeletons or spinners); the first visit after the server starts includes the
           server's imports. An interaction (a key press on a slider, a mouse click on a radio option
           or inside the heatmap's plot area; the page opened by a link that names the tab and run):
           "figure redrawn" from the input event until the figures' Plotly title/annotation text has
           reached the value it keeps once the run is over (for the click: until the histogram of the
           clicked layer and step is drawn), and "run finished" until the app is idle (that text no longer
           changing either). --repeats times after one untimed first move (it fills the figure cache of
           the value pair); the click opens the page afresh each time. Where the text never changed, the
           run-finished time stands in (counted as figure_text_unchanged). Includes the websocket round
           trip, Plotly drawing and the browser's layout, all on the same CPUs.

The header names the CPU (benchmarks/train_step.py's machine_header) and the load average at start;
the closing table (interaction, server median/max, browser figure-redrawn median/max, target, met?
— judged on the browser median, or on the server's without --browser) the load average at the end.

Runs: those under --roots (default: the shipped data/runs/ and runs/). If none of them is an
analysed BNTT run, or with --build, a small run is trained and analysed in a temporary folder first
(the quickstart preset shortened: VGG5 ¼ width on mnist10k, T 6, one epoch on 2,048 images).

    .venv/bin/python benchmarks/dashboard_speed.py                  # server-side timings
    .venv/bin/python benchmarks/dashboard_speed.py --browser        # and in Chromium
    .venv/bin/python benchmarks/dashboard_speed.py --roots data/runs --repeats 9

Results also go to benchmarks/results/dashboard_speed.json: "open" and "slider" (the sliders timed
before: four server-side, two in the browser) as before, "interaction" (the interactions above),
"table" (the printed rows) and "machine" (CPU, load averages).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
APP = REPO_ROOT / "dashboard" / "app.py"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "dashboard_speed.json"
VIEWS = ("runs", "gamma", "spikes", "early_exit", "robustness", "compare", "learn")
URL_PATHS = {"runs": "", "gamma": "gamma", "spikes": "spikes", "early_exit": "early_exit",
             "robustness": "robustness", "compare": "compare", "learn": "learn"}
OPEN_TARGET_S, SLIDER_TARGET_S = 3.0, 0.3
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HEATMAP_TAB, HISTOGRAM_TAB = "Mean γ heatmap", "γ histograms (Fig 6)"
HEATMAP_CHART, HISTOGRAM_CHART = "gamma_heatmap-chart", "gamma_hist-chart"  # the charts' widget keys
THROUGH_TRAINING = {"gamma_section": "Through training"}
# the γ explorer's and the spikes view's interactions: the view, the tab (and sub-view) they live in (session
# state; in the browser, the link's query parameters), the widget key and its AppTest kind. A radio: its
# options (the order toggled: the one the view opens on last) and the labels the browser shows for them; a
# slider: its label and the keys that move it back and forth; `history`: needs a run with a γ history.
INTERACTIONS = {
    "γ heatmap colour range": dict(view="gamma", state={"gamma_section": HEATMAP_TAB}, key="gamma_heat_scale",
                                   kind="radio", options={"run": "This run's own min–max",
                                                          "fixed": "Fixed: 0 to max(1, the largest γ)"}),
    "γ heatmap click → histogram": dict(view="gamma", state={"gamma_section": HEATMAP_TAB}, kind="click"),
    "γ distributions ridge ↔ bands": dict(view="gamma", state={"gamma_section": "Distributions over time"},
                                          key="gamma_dist_kind", kind="radio",
                                          options={"bands": "Percentile bands over t",
                                                   "ridge": "Ridge: a histogram per step"}),
    "γ training: step slider": dict(view="gamma", state={**THROUGH_TRAINING, "gamma_train_view": "histograms"},
                                    key="gamma_train_step", kind="select_slider", label="Time step t",
                                    keys=("ArrowRight", "ArrowLeft"), history=True),
    "γ training: threshold slider": dict(view="gamma", state={**THROUGH_TRAINING, "gamma_train_view": "exit"},
                                         key="gamma_train_threshold", kind="slider", label="threshold",
                                         keys=("PageUp", "PageDown"), history=True),
    "spikes Fig 3 show": dict(view="spikes", state={"spikes_section": "BN input (Fig 3)"}, key="spikes_bn_view",
                              kind="radio", options={"ridge": "Ridge: a histogram per step",
                                                     "bands": "Percentile bands over t",
                                                     "fig3": "Chosen steps and the mean (Fig 3)"}),
}


# ------------------------------------------------------------------------------------------ runs
def analysed_bntt_run(roots: list[Path]) -> Path | None:
    from bntt_core.runs import listing

    for card in listing.describe_runs(roots):
        if card["error"] is None and {"early_exit", "gamma", "gamma_mean"} <= set(card["tables"]):
            return Path(card["path"])
    return None


def explorer_run(roots: list[Path]) -> tuple[Path | None, bool]:
    """The run the new interactions use: an analysed BNTT run with the γ and BN-input tables, one with a
    γ history first and the shipped quickstart (what the views open on) first among equals; (its path or
    None, whether it has a γ history)."""
    from bntt_core.analysis.gamma_history import GAMMA_HISTORY_FILE
    from bntt_core.runs import listing

    tables = {"gamma", "gamma_mean", "bn_input", "bn_input_hist"}
    found = [(not (Path(card["path"]) / GAMMA_HISTORY_FILE).is_file(), card["name"] != "quickstart", card["path"])
             for card in listing.describe_runs(roots) if card["error"] is None and tables <= set(card["tables"])]
    if not found:
        return None, False
    no_history, _, path = min(found)
    return Path(path), not no_history


def skipped(spec: dict, explorer: Path | None, history: bool) -> str | None:
    """Why an interaction cannot be timed on these runs; None when it can."""
    if explorer is None:
        return "no analysed BNTT run with the γ and BN-input tables"
    return "no run with a γ history" if spec.get("history") and not history else None


def build_run(root: Path) -> Path:
    """Train and analyse a small BNTT run (real APIs) under `root`."""
    from bntt_core.analysis import analyze_run
    from bntt_core.runs.training import TrainConfig, train

    config = TrainConfig.from_preset("quickstart", epochs=1, max_train_images=2048, device="cpu")
    path = root / "quickstart-short"
    print(f"building a benchmark run in {path} (quickstart preset, 1 epoch on 2,048 images)…", flush=True)
    train(config, path, progress="none")
    analyze_run(path, quick=True)
    return path


# ------------------------------------------------------------------------------------ server side
def timed_run(app) -> float:
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    if app.exception:
        raise RuntimeError(f"the app raised: {[e.message for e in app.exception]}")
    return elapsed


def open_view(view: str, timeout: float):
    """A fresh session (AppTest) that has opened the default page; returns it and that run's time."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP), default_timeout=timeout)
    first = timed_run(app)
    if view == "runs":
        return app, first
    app.switch_page(f"views/{view}.py")
    return app, timed_run(app)


def chart(app, key: str):
    """The plotly chart whose widget key is `key`: (its element, its figure as a dict)."""
    found = [c for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}") or c.proto.id == key]
    if not found:
        raise RuntimeError(f"no chart {key!r}; charts: {[c.proto.id for c in app.get('plotly_chart')]}")
    return found[0], json.loads(found[0].proto.spec)


def server_timings(repeats: int, timeout: float, explorer: Path | None, history: bool) -> dict:
    results: dict = {"open": {}, "slider": {}, "interaction": {}}
    for view in VIEWS:
        _, cold = open_view(view, timeout)
        warm = [open_view(view, timeout)[1] for _ in range(repeats)]
        results["open"][view] = {"cold_s": cold, "warm_median_s": statistics.median(warm), "warm_max_s": max(warm)}
        print(f"  open {view:<11} cold {cold:6.2f} s   warm median {statistics.median(warm):6.3f} s", flush=True)

    def slider_moves(view: str, key: str, kind: str, session: dict | None = None) -> list[float]:
        app, _ = open_view(view, timeout)
        for name, value in (session or {}).items():
            app.session_state[name] = value
        timed_run(app)
        widget = getattr(app, kind)(key=key)
        values = list(widget.options) if kind == "select_slider" else \
            [widget.min + (widget.max - widget.min) * i / (repeats + 1) for i in range(1, repeats + 2)]
        times = []
        for i in range(repeats):
            getattr(app, kind)(key=key).set_value(values[(i + 1) % len(values)])
            times.append(timed_run(app))
        return times

    moves = {
        "early_exit threshold": slider_moves("early_exit", "early_exit_threshold", "slider"),
        "γ histogram step": slider_moves("gamma", "gamma_hist_step", "select_slider",
                                         {"gamma_section": "γ histograms (Fig 6)"}),
        "γ Fig 4 threshold": slider_moves("gamma", "gamma_threshold", "slider",
                                          {"gamma_section": "Mean γ and exit threshold (Fig 4)"}),
        "learn LIF amplitude": slider_moves("learn", "learn_lif_amplitude", "slider"),
    }
    for name, times in moves.items():
        results["slider"][name] = {"median_s": statistics.median(times), "max_s": max(times)}
        print(f"  slider {name:<22} median {statistics.median(times) * 1000:6.0f} ms   max {max(times) * 1000:6.0f} ms",
              flush=True)

    def radio_toggles(view: str, key: str, options: list, session: dict) -> list[float]:
        app, _ = open_view(view, timeout)
        for name, value in session.items():
            app.session_state[name] = value
        timed_run(app)
        times = []
        for i in range(repeats + 1):  # the first toggle fills the figure cache of the other option
            app.radio(key=key).set_value(options[i % len(options)])
            elapsed = timed_run(app)
            if i:
                times.append(elapsed)
        return times

    def heatmap_clicks(session: dict) -> list[float]:
        """A click on a heatmap cell, as the browser sends it (the chart's selection); each on another cell."""
        from streamlit.proto.WidgetStates_pb2 import WidgetStates

        app, _ = open_view("gamma", timeout)
        for name, value in session.items():
            app.session_state[name] = value
        timed_run(app)
        times = []
        for i in range(repeats + 1):  # the first click is not timed, as in the browser
            element, figure = chart(app, HEATMAP_CHART)
            cells = figure["data"][1]  # the invisible, clickable marker on every cell
            k = (3 + 7 * i) % len(cells["x"])
            layer, step = cells["customdata"][k][0], int(cells["customdata"][k][1])
            point = {"curve_number": 1, "point_number": k, "point_index": k, "x": cells["x"][k], "y": cells["y"][k],
                     "customdata": cells["customdata"][k]}
            widgets = [w for w in app._tree.get_widget_states().widgets if w.id != element.proto.id]
            states = WidgetStates(widgets=widgets)
            clicked = states.widgets.add()
            clicked.id = element.proto.id
            clicked.string_value = json.dumps({"selection": {"points": [point], "point_indices": [k], "box": [],
                                                             "lasso": []}})
            start = time.perf_counter()
            app._run(states)
            elapsed = time.perf_counter() - start
            if app.exception:
                raise RuntimeError(f"the app raised: {[e.message for e in app.exception]}")
            title = chart(app, HISTOGRAM_CHART)[1]["layout"]["title"]["text"]
            if app.session_state["gamma_section"] != HISTOGRAM_TAB or f"t = {step}" not in title \
                    or app.multiselect(key="gamma_hist_layers").value != [layer]:
                raise RuntimeError(f"a click on {layer}, t = {step} did not open its histogram")
            if i:
                times.append(elapsed)
            app.session_state["gamma_section"] = HEATMAP_TAB  # back to the heatmap (not timed)
            timed_run(app)
        return times

    for name, spec in INTERACTIONS.items():
        why = skipped(spec, explorer, history)
        if why:
            results["interaction"][name] = {"skipped": why}
            print(f"  {name:<32} skipped: {why}", flush=True)
            continue
        session = {f"{spec['view']}_run": str(explorer), **spec["state"]}
        if spec["kind"] == "click":
            times = heatmap_clicks(session)
        elif spec["kind"] == "radio":
            times = radio_toggles(spec["view"], spec["key"], list(spec["options"]), session)
        else:
            times = slider_moves(spec["view"], spec["key"], spec["kind"], session)
        results["interaction"][name] = {"median_s": statistics.median(times), "max_s": max(times)}
        print(f"  {name:<32} median {statistics.median(times) * 1000:6.0f} ms   max {max(times) * 1000:6.0f} ms",
              flush=True)
    return results


# ---------------------------------------------------------------------------------------- browser
RUNNING_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !app || app.getAttribute('data-test-script-state') === 'running'
    || document.querySelector('[data-testid="stSkeleton"], [data-testid="stSpinner"]') !== null;
}"""


# the text Plotly draws (titles, annotations): changes when a figure is redrawn with new values
FIGURE_TEXT_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot .gtitle, .js-plotly-plot .annotation-text'))
  .map(e => e.textContent).join('|')"""


PAGE_STATE_JS = f"() => [({RUNNING_JS})(), ({FIGURE_TEXT_JS})()]"

# the centre of heatmap cell k (of the clickable markers' trace) in the page, with its layer and step
HEATMAP_CELL_JS = """(k) => {
  const gd = document.querySelector('.js-plotly-plot');
  const cells = gd.data[1], i = k % cells.x.length;
  const area = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: area.left + xa.l2p(xa.d2l(cells.x[i])), y: area.top + ya.l2p(ya.d2l(cells.y[i])),
          left: area.left, top: area.top, right: area.right, bottom: area.bottom,
          layer: String(cells.customdata[i][0]), step: Number(cells.customdata[i][1])};
}"""


def idle_at(page, started: float, settle: float = 0.75, timeout: float = 120.0) -> float:
    """Seconds from `started` until the app went idle (and stayed idle for `settle` seconds)."""
    quiet_since = None
    while time.perf_counter() - started < timeout:
        if page.evaluate(RUNNING_JS):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= settle:
            return quiet_since - started
        time.sleep(0.02)
    raise TimeoutError("the dashboard did not go idle")


def redraw_times(page, act, *, shown=None, settle: float = 0.75, timeout: float = 120.0) -> tuple[float | None, float]:
    """Do `act()` and watch the page until the app has been idle for `settle` seconds: (seconds until the
    figure was redrawn, seconds until the run finished). Redrawn: when `shown(figure text)` first held, or
    without `shown` when the figures' text last changed (the value it keeps); None if it never did. A change
    of the text counts as activity too (a short run can start and end between two looks)."""
    before = page.evaluate(FIGURE_TEXT_JS)
    started = time.perf_counter()
    act()
    text, drawn, quiet_since = before, None, None
    while time.perf_counter() - started < timeout:
        running, current = page.evaluate(PAGE_STATE_JS)
        now = time.perf_counter()
        changed = current != text
        text = current
        if shown is not None:
            if drawn is None and shown(current):
                drawn = now - started
        elif changed:
            drawn = now - started
        if running or changed:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= settle:
            return drawn, quiet_since - started
        time.sleep(0.005)
    raise TimeoutError("the dashboard did not go idle")


def visit(page, url: str) -> float:
    """Open `url`; seconds until the app was drawn and idle."""
    started = time.perf_counter()
    page.goto(url)
    page.locator("h1").first.wait_for()
    return idle_at(page, started)


def summarise(drawn: list, finished: list[float]) -> dict:
    """Figure-redrawn and run-finished times; where the figure text never changed, the run-finished time."""
    unseen = sum(d is None for d in drawn)
    drawn = [d if d is not None else f for d, f in zip(drawn, finished, strict=True)]
    result = {"figure_redrawn_median_s": statistics.median(drawn), "figure_redrawn_max_s": max(drawn),
              "run_finished_median_s": statistics.median(finished)}
    if unseen:
        result["figure_text_unchanged"] = unseen
    return result


def interaction_times(page, url: str, spec: dict, repeats: int) -> tuple[list, list[float]]:
    """One of INTERACTIONS, `repeats` times after an untimed first (figure-redrawn and run-finished times).
    A radio: a mouse click on the next option; a slider: a key press; the heatmap click: a mouse click on
    the centre of another cell each time, on a freshly opened page (the heatmap tab, nothing selected)."""
    drawn, finished = [], []
    if spec["kind"] == "click":
        for i in range(repeats + 1):
            visit(page, url)
            page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
            cell = page.evaluate(HEATMAP_CELL_JS, 3 + 7 * i)  # the cells the server side clicks
            if not (cell["left"] < cell["x"] < cell["right"] and cell["top"] < cell["y"] < cell["bottom"]):
                raise RuntimeError(f"heatmap cell {cell} lies outside the plot area")

            def opened(text: str, cell=cell) -> bool:  # the histogram of that layer at that step is drawn
                return f"t = {cell['step']}" in text and cell["layer"] in text.split("|")

            drawn_at, done = redraw_times(page, lambda cell=cell: page.mouse.click(cell["x"], cell["y"]), shown=opened)
            if drawn_at is None:
                raise RuntimeError(f"a click on {cell['layer']}, t = {cell['step']} did not open its histogram")
            if i:  # the first click is not timed, as the first move of a slider
                drawn.append(drawn_at)
                finished.append(done)
        return drawn, finished
    visit(page, url)
    labels = list(spec.get("options", {}).values())
    group = page.locator('[data-testid="stRadio"]').filter(has_text=labels[0]) if labels else None
    thumb = None if labels else \
        page.locator('[data-testid="stSlider"]').filter(has_text=spec["label"]).get_by_role("slider")
    for i in range(repeats + 1):
        if group is not None:
            option = group.get_by_text(labels[i % len(labels)], exact=True)
            option.scroll_into_view_if_needed()
            box = option.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            drawn_at, done = redraw_times(page, lambda x=x, y=y: page.mouse.click(x, y))
        else:
            thumb.focus()
            drawn_at, done = redraw_times(page, lambda key=spec["keys"][i % 2]: page.keyboard.press(key))
        if i:  # the first move warms the figure cache of this value pair
            drawn.append(drawn_at)
            finished.append(done)
    return drawn, finished


def report_move(label: str, result: dict) -> None:
    unseen = result.get("figure_text_unchanged")
    print(f"  {label} figure redrawn: median {result['figure_redrawn_median_s'] * 1000:5.0f} ms, "
          f"max {result['figure_redrawn_max_s'] * 1000:5.0f} ms; run finished: median "
          f"{result['run_finished_median_s'] * 1000:5.0f} ms"
          + (f" (figure text unchanged {unseen}×: run finished used)" if unseen else ""), flush=True)


def browser_timings(roots: list[Path], repeats: int, explorer: Path | None, history: bool) -> dict:
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "BNTT_RUN_ROOTS": os.pathsep.join(str(r) for r in roots), "BNTT_NO_DEFAULT_RUN_ROOTS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true",
                               "--browser.gatherUsageStats", "false"], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    results: dict = {"open": {}, "slider": {}, "interaction": {}}
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            executable = os.environ.get("BNTT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            for view in VIEWS:
                times = []
                for _ in range(repeats + 1):  # the first open fills the server's caches
                    started = time.perf_counter()
                    page.goto(f"{base}/{URL_PATHS[view]}")
                    page.locator("h1").first.wait_for()
                    times.append(idle_at(page, started))
                results["open"][view] = {"cold_s": times[0], "warm_median_s": statistics.median(times[1:])}
                print(f"  open {view:<11} cold {times[0]:6.2f} s   warm median {statistics.median(times[1:]):6.2f} s",
                      flush=True)
            moves = {
                "early_exit threshold": ("early_exit", None, "threshold", ("PageUp", "PageDown")),
                "γ histogram step": ("gamma", "γ histograms (Fig 6)", "Time step", ("ArrowRight", "ArrowLeft")),
            }
            for name, (path, tab, label, keys) in moves.items():
                page.goto(f"{base}/{path}")
                page.locator("h1").first.wait_for()
                idle_at(page, time.perf_counter())
                if tab:
                    page.get_by_role("tab", name=tab, exact=True).click()
                    idle_at(page, time.perf_counter())
                thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
                drawn, finished = [], []
                for i in range(repeats + 1):
                    thumb.focus()
                    drawn_at, done = redraw_times(page, lambda key=keys[i % 2]: page.keyboard.press(key))
                    if i:  # the first move warms the figure cache of this value pair
                        drawn.append(drawn_at)
                        finished.append(done)
                results["slider"][name] = summarise(drawn, finished)
                report_move(f"slider {name:<22}", results["slider"][name])

            for name, spec in INTERACTIONS.items():
                why = skipped(spec, explorer, history)
                if why:
                    results["interaction"][name] = {"skipped": why}
                    continue
                url = f"{base}/{URL_PATHS[spec['view']]}?" + urllib.parse.urlencode(
                    {f"{spec['view']}_run": str(explorer), **spec["state"]})
                drawn, finished = interaction_times(page, url, spec, repeats)
                results["interaction"][name] = summarise(drawn, finished)
                report_move(f"{name:<29}", results["interaction"][name])
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return results


def summary_table(report: dict) -> list[dict]:
    """One row per timed interaction: server and browser (figure redrawn) median and max, target, met?"""
    rows = []
    browser = report.get("browser", {})
    for section in ("slider", "interaction"):
        for name, server in report["server"][section].items():
            row = {"interaction": name, "target_ms": SLIDER_TARGET_S * 1000}
            if "skipped" in server:
                rows.append({**row, "skipped": server["skipped"]})
                continue
            row.update(server_median_ms=server["median_s"] * 1000, server_max_ms=server["max_s"] * 1000)
            seen = browser.get(section, {}).get(name, {})
            if "figure_redrawn_median_s" in seen:
                row.update(browser_median_ms=seen["figure_redrawn_median_s"] * 1000,
                           browser_max_ms=seen["figure_redrawn_max_s"] * 1000)
                row["met"] = row["browser_median_ms"] <= row["target_ms"]
            else:  # the server's run only: a lower bound on what a visitor waits
                row["met"] = row["server_median_ms"] <= row["target_ms"]
                row["judged_on"] = "server"
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\n{'interaction':<32}{'server median/max':>20}{'browser redrawn median/max':>29}{'target':>9}  met?")
    for row in rows:
        if "skipped" in row:
            print(f"{row['interaction']:<32}{'skipped: ' + row['skipped']:>49}{row['target_ms']:>6.0f} ms  —")
            continue
        server = f"{row['server_median_ms']:.0f} / {row['server_max_ms']:.0f} ms"
        browser = f"{row['browser_median_ms']:.0f} / {row['browser_max_ms']:.0f} ms" if "browser_median_ms" in row \
            else "—"
        met = ("yes" if row["met"] else "no") + (" (server only)" if row.get("judged_on") == "server" else "")
        print(f"{row['interaction']:<32}{server:>20}{browser:>29}{row['target_ms']:>6.0f} ms  {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roots", nargs="*", type=Path, help="run roots (default: data/runs and runs)")
    parser.add_argument("--build", action="store_true", help="always build and use a fresh small run")
    parser.add_argument("--browser", action="store_true", help="also measure in headless Chromium")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one script run")
    args = parser.parse_args()

    from benchmarks.train_step import machine_header

    load_start = os.getloadavg()
    header = machine_header("native")
    print(header)
    print(f"# {os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in load_start)} (1, 5, 15 min) at start")
    roots = [p.resolve() for p in (args.roots or [REPO_ROOT / "data" / "runs", REPO_ROOT / "runs"])]
    scratch = None
    run = None if args.build else analysed_bntt_run(roots)
    if run is None:
        scratch = tempfile.TemporaryDirectory(prefix="bntt-dashboard-speed-")
        run = build_run(Path(scratch.name))
        roots = [Path(scratch.name)]
    os.environ["BNTT_RUN_ROOTS"] = os.pathsep.join(str(r) for r in roots)
    os.environ["BNTT_NO_DEFAULT_RUN_ROOTS"] = "1"
    explorer, history = explorer_run(roots)
    print(f"runs under {', '.join(str(r) for r in roots)}; BNTT run timed: {run.name}; γ explorer and Fig 3 "
          f"interactions on: {explorer.name if explorer else 'none'}"
          + (" (with a γ history)" if history else " (no γ history: the training sliders are skipped)"))

    report = {"roots": [str(r) for r in roots], "bntt_run": str(run), "explorer_run": str(explorer) if explorer else None,
              "repeats": args.repeats, "cpus": os.cpu_count(),
              "targets": {"open_s": OPEN_TARGET_S, "slider_s": SLIDER_TARGET_S}}
    print("server (AppTest: one script run)")
    report["server"] = server_timings(args.repeats, args.timeout, explorer, history)
    if args.browser:
        print("browser (headless Chromium: navigation, key press or click → drawn and idle)")
        report["browser"] = browser_timings(roots, args.repeats, explorer, history)
    report["table"] = summary_table(report)
    load_end = os.getloadavg()
    report["machine"] = {"header": header, "load_average_start": load_start, "load_average_end": load_end}
    print_table(report["table"])
    print(f"# load average {' '.join(f'{x:.2f}' for x in load_end)} (1, 5, 15 min) at end; median over "
          f"{args.repeats}; met? on the browser's figure-redrawn median")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
