"""Dashboard speed: how long a view takes to open and how long a slider move takes to re-render.

Targets (issue 6), with the analysis present: moving the early-exit or step slider re-renders in
< 300 ms, and a view opens in < 3 s. Two ways of measuring, both printed:

  server   `streamlit.testing.v1.AppTest` runs the app script exactly as the server does for one
           browser session; the time is one script run (what the server spends before the browser
           can draw). "first open" is the view's first run in this process (its tables, model and
           figures not cached yet; torch and bntt_core are already imported); "later opens" the
           median over new sessions once the caches are filled, as for every later visitor.
  browser  (--browser; needs Chromium — `chromium` on the PATH, or $BNTT_CHROMIUM — and the
           playwright package) a real `streamlit run` on a free localhost port and headless
           Chromium. A view: from navigation until the app has finished its run and drawn (script
           idle, no skeletons or spinners); the first visit after the server starts includes the
           server's imports. A slider: from the key press until the figure is redrawn with the new
           value (its Plotly title/annotation text changes), and until the run has finished.
           Includes the websocket round trip, Plotly drawing and the browser's layout, all on the
           same CPUs.

Runs: those under --roots (default: the shipped data/runs/ and runs/). If none of them is an
analysed BNTT run, or with --build, a small run is trained and analysed in a temporary folder first
(the quickstart preset shortened: VGG5 ¼ width on mnist10k, T 6, one epoch on 2,048 images).

    .venv/bin/python benchmarks/dashboard_speed.py                  # server-side timings
    .venv/bin/python benchmarks/dashboard_speed.py --browser        # and in Chromium
    .venv/bin/python benchmarks/dashboard_speed.py --roots data/runs --repeats 9

Results also go to benchmarks/results/dashboard_speed.json.
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


# ------------------------------------------------------------------------------------------ runs
def analysed_bntt_run(roots: list[Path]) -> Path | None:
    from bntt_core import explore

    for card in explore.describe_runs(roots):
        if card["error"] is None and {"early_exit", "gamma", "gamma_mean"} <= set(card["tables"]):
            return Path(card["path"])
    return None


def build_run(root: Path) -> Path:
    """Train and analyse a small BNTT run (real APIs) under `root`."""
    from bntt_core.analysis import analyze_run
    from bntt_core.training import TrainConfig, train

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


def server_timings(repeats: int, timeout: float) -> dict:
    results: dict = {"open": {}, "slider": {}}
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


def browser_timings(roots: list[Path], repeats: int) -> dict:
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
    results: dict = {"open": {}, "slider": {}}
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
                    before = page.evaluate(FIGURE_TEXT_JS)
                    started = time.perf_counter()
                    page.keyboard.press(keys[i % 2])
                    drawn_at = None
                    while time.perf_counter() - started < 30:
                        if page.evaluate(FIGURE_TEXT_JS) != before:
                            drawn_at = time.perf_counter() - started
                            break
                        time.sleep(0.005)
                    done = idle_at(page, started)
                    if i:  # the first move warms the figure cache of this value pair
                        drawn.append(drawn_at if drawn_at is not None else done)
                        finished.append(done)
                results["slider"][name] = {"figure_redrawn_median_s": statistics.median(drawn),
                                           "figure_redrawn_max_s": max(drawn),
                                           "run_finished_median_s": statistics.median(finished)}
                print(f"  slider {name:<22} figure redrawn: median {statistics.median(drawn) * 1000:5.0f} ms, "
                      f"max {max(drawn) * 1000:5.0f} ms; run finished: median "
                      f"{statistics.median(finished) * 1000:5.0f} ms", flush=True)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roots", nargs="*", type=Path, help="run roots (default: data/runs and runs)")
    parser.add_argument("--build", action="store_true", help="always build and use a fresh small run")
    parser.add_argument("--browser", action="store_true", help="also measure in headless Chromium")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one script run")
    args = parser.parse_args()

    roots = [p.resolve() for p in (args.roots or [REPO_ROOT / "data" / "runs", REPO_ROOT / "runs"])]
    scratch = None
    run = None if args.build else analysed_bntt_run(roots)
    if run is None:
        scratch = tempfile.TemporaryDirectory(prefix="bntt-dashboard-speed-")
        run = build_run(Path(scratch.name))
        roots = [Path(scratch.name)]
    os.environ["BNTT_RUN_ROOTS"] = os.pathsep.join(str(r) for r in roots)
    os.environ["BNTT_NO_DEFAULT_RUN_ROOTS"] = "1"
    print(f"runs under {', '.join(str(r) for r in roots)}; BNTT run timed: {run.name}")

    report = {"roots": [str(r) for r in roots], "bntt_run": str(run), "repeats": args.repeats,
              "cpus": os.cpu_count(), "targets": {"open_s": OPEN_TARGET_S, "slider_s": SLIDER_TARGET_S}}
    print("server (AppTest: one script run)")
    report["server"] = server_timings(args.repeats, args.timeout)
    if args.browser:
        print("browser (headless Chromium: navigation or key press → drawn and idle)")
        report["browser"] = browser_timings(roots, args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
