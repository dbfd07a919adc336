"""Execute the notebooks in notebooks/ with papermill, and optionally export an HTML report folder.

    python -m bntt_core.notebook_runner --quick                    # every notebook on tiny stand-in runs
    python -m bntt_core.notebook_runner --full --report reports/   # `make figures`: the shipped runs
    python -m bntt_core.notebook_runner --quick --only fig1        # notebooks whose name contains "fig1"

Each notebook runs in the kernel "python3" of this interpreter (`make install` registers it for the
project's .venv) with the papermill parameters QUICK and OUTPUT_DIR. Without --report the executed
copies go to a temporary folder and the figures to notebooks/outputs/ (or --output-dir). With
--report DIR: DIR/<notebook>.html (the executed notebook, nbconvert), DIR/executed/<notebook>.ipynb,
DIR/figures/ (every figure as HTML, PNG and CSV) and DIR/index.html linking them with each
notebook's status and time. A failing notebook does not stop the others; the exit code is 1 if any
failed. QUICK stand-in runs are cached under $BNTT_QUICK_CACHE (default notebooks/outputs/quick_runs),
and QUICK kernels run with one intra-op thread (QUICK_KERNEL_ENV) unless the environment says otherwise.

Each notebook is a jupytext pair (notebooks/jupytext.toml): <name>.py, its py:percent source, and
<name>.ipynb, which is what runs. A pair whose cells differ (a .py edited without
`jupytext --sync notebooks/*.py`) is run from its .ipynb with a printed warning.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bntt_core.data.locations import project_root
from bntt_core.paper import DEFAULT_OUTPUT_DIR, resolve_path

KERNEL_NAME = "python3"
SYNC_COMMAND = ".venv/bin/jupytext --sync notebooks/*.py"
CELL_TIMEOUT_S = 3600  # one cell may train a model in full mode
REPORT_PLOTLY_RENDERER = "plotly_mimetype+notebook"
# QUICK kernels use one intra-op thread: the stand-in models are tiny, and on a busy 2-core machine
# OpenMP's spinning worker threads made them about 5× slower than one thread (measured here).
QUICK_KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class NotebookResult:
    name: str
    ok: bool
    seconds: float
    executed: Path
    error: str = ""
    html: Path | None = None


def notebook_paths(only: str | None = None) -> list[Path]:
    """The notebooks in notebooks/ (sorted: figures 01–09, then workshops w1–w4), optionally only
    those whose file name contains `only`."""
    paths = sorted((project_root() / "notebooks").glob("*.ipynb"))
    if only:
        paths = [path for path in paths if only in path.stem]
    return paths


def pair_difference(notebook: Path) -> str:
    """How `notebook` (.ipynb) and its py:percent source (the .py beside it) differ; "" when jupytext
    reads the same cells (types, sources, metadata such as tags and jupyter.source_hidden) and the same
    notebook metadata (kernelspec, bntt_figures) from both. Compared like `jupytext --test`: what the .py
    never holds (outputs, execution counts, metadata jupytext filters out, e.g. "scrolled") is ignored."""
    import jupytext
    from jupytext.compare import NotebookDifference, compare_notebooks

    source = notebook.with_suffix(".py")
    if not source.is_file():
        return f"{source.name} is missing"
    try:
        # jupytext's words: "actual" is what the .py holds, "expected" what the .ipynb holds
        compare_notebooks(jupytext.read(source), jupytext.read(notebook), fmt="py:percent")
    except NotebookDifference as difference:
        return f"{source.name} (actual) and {notebook.name} (expected) differ: {difference}"
    return ""


def check_kernel() -> str:
    """The interpreter the "python3" kernel will start; a warning when it is not this one."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    command = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3" by the interpreter that launches the kernel
    if command in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return sys.executable
    if Path(command).resolve() != Path(sys.executable).resolve():
        print(f"warning: kernel {KERNEL_NAME!r} ({spec.resource_dir}) runs {command}, not {sys.executable}; "
              f"register this environment's kernel with `{sys.executable} -m ipykernel install --sys-prefix "
              f"--name {KERNEL_NAME}`", file=sys.stderr)
    return command


def execute(path: Path, executed: Path, *, quick: bool, output_dir: Path) -> NotebookResult:
    """Run one notebook with papermill (parameters QUICK, OUTPUT_DIR) from its own folder."""
    import papermill

    started = time.perf_counter()
    error = ""
    try:
        papermill.execute_notebook(str(path), str(executed), parameters={"QUICK": quick, "OUTPUT_DIR": str(output_dir)},
                                   kernel_name=KERNEL_NAME, cwd=str(path.parent), progress_bar=False,
                                   execution_timeout=CELL_TIMEOUT_S)
    except Exception as exc:  # papermill's execution error carries the failing cell's traceback
        error = f"{type(exc).__name__}: {exc}"
    return NotebookResult(path.stem, not error, time.perf_counter() - started, executed, error)


def export_html(result: NotebookResult, report_dir: Path) -> None:
    """The executed notebook as one HTML page (nbconvert's lab template)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(result.executed, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    result.html = report_dir / f"{result.name}.html"
    result.html.write_text(body, encoding="utf-8")


def write_index(results: list[NotebookResult], report_dir: Path, *, quick: bool) -> Path:
    rows = []
    for result in results:
        link = (f'<a href="{html.escape(result.html.name)}">{html.escape(result.name)}</a>' if result.html
                else html.escape(result.name))
        status = "ok" if result.ok else f"failed: {html.escape(result.error.splitlines()[0] if result.error else '')}"
        rows.append(f"<tr><td>{link}</td><td>{status}</td><td>{result.seconds:.0f} s</td></tr>")
    mode = "QUICK (tiny stand-in runs: the numbers mean nothing)" if quick else "full (the shipped runs)"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>bntt_core notebooks</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em 1em;text-align:left}}</style></head>
<body><h1>bntt_core notebooks</h1><p>Mode: {mode}. Generated {time.strftime('%Y-%m-%d %H:%M')}.
Figures (HTML, PNG, CSV) are in <a href="figures/">figures/</a>.</p>
<table><tr><th>notebook</th><th>status</th><th>time</th></tr>{''.join(rows)}</table></body></html>
"""
    index = report_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def run(*, quick: bool, report: str | os.PathLike | None, only: str | None,
        output_dir: str | os.PathLike | None) -> list[NotebookResult]:
    paths = notebook_paths(only)
    if not paths:
        raise SystemExit(f"no notebook in {project_root() / 'notebooks'} matches {only!r}")
    print(f"kernel {KERNEL_NAME!r} runs {check_kernel()}")
    for path in paths:
        if difference := pair_difference(path):
            print(f"warning: running {path.name}, which is not in sync with its source: run `{SYNC_COMMAND}` "
                  f"first to run the .py's cells. {difference.splitlines()[0]}", file=sys.stderr)
    report_dir = resolve_path(report) if report else None
    if quick:
        for name, value in QUICK_KERNEL_ENV.items():
            os.environ.setdefault(name, value)  # inherited by the kernels
    if report_dir is not None:
        # the kernels inherit this: figures then also carry text/html with plotly.js inlined once per
        # notebook, so the nbconvert pages show them offline (the default output is Plotly's JSON only)
        os.environ.setdefault("PLOTLY_RENDERER", REPORT_PLOTLY_RENDERER)
    with tempfile.TemporaryDirectory(prefix="bntt-notebooks-") as scratch:
        if report_dir is not None:
            executed_dir = report_dir / "executed"
            figures = resolve_path(output_dir) if output_dir else report_dir / "figures"
        else:
            executed_dir = Path(scratch)
            figures = resolve_path(output_dir or DEFAULT_OUTPUT_DIR)
        executed_dir.mkdir(parents=True, exist_ok=True)
        figures.mkdir(parents=True, exist_ok=True)
        results = []
        for path in paths:
            result = execute(path, executed_dir / path.name, quick=quick, output_dir=figures)
            if report_dir is not None and result.executed.is_file():
                export_html(result, report_dir)
            print(f"{path.stem}: {'ok' if result.ok else 'FAILED'} ({result.seconds:.0f} s)", flush=True)
            if not result.ok:
                print(result.error, file=sys.stderr)
            results.append(result)
        if report_dir is not None:
            print(f"report: {write_index(results, report_dir, quick=quick)}")
        print(f"figures: {figures}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bntt_core.notebook_runner",
                                     description="Execute the notebooks (papermill); optionally export an HTML report.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny stand-in runs trained in seconds (CI)")
    mode.add_argument("--full", action="store_true", help="the shipped runs (default)")
    parser.add_argument("--report", metavar="DIR", help="write DIR/index.html, one HTML page per notebook, figures/")
    parser.add_argument("--only", metavar="NAME", help="only notebooks whose file name contains NAME")
    parser.add_argument("--output-dir", metavar="DIR",
                        help=f"where the figures go (default: DIR/figures with --report, else {DEFAULT_OUTPUT_DIR})")
    args = parser.parse_args(argv)
    results = run(quick=args.quick, report=args.report, only=args.only, output_dir=args.output_dir)
    failed = [result.name for result in results if not result.ok]
    total = sum(result.seconds for result in results)
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ran ({total:.0f} s)"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
