"""The notebooks in notebooks/: committed clean, each .ipynb in sync with its jupytext py:percent source
notebooks/<name>.py (paired by notebooks/jupytext.toml), and every one of them runs end to end in QUICK mode.

    .venv/bin/python -m pytest tests/test_notebooks.py -q                  # all (executes 13 notebooks)
    .venv/bin/python -m pytest tests/test_notebooks.py -q -m "not slow"    # only the static checks

Execution uses papermill with the kernel "python3" of this interpreter, parameters QUICK = True and
OUTPUT_DIR = a temporary folder, and one intra-op thread per kernel (QUICK_KERNEL_ENV in
bntt_core.notebook_runner). The QUICK stand-in runs are trained once per test session into a temporary
$BNTT_QUICK_CACHE that every notebook's kernel inherits.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_fig1_spike_activity", "02_fig3_bn_input", "03_fig4_fig7_gamma_early_exit", "04_fig5_spike_rate",
            "05_fig6_gamma_histograms", "06_fig8_robustness", "07_table1_table5_accuracy",
            "08_table3_sequential_mnist", "09_energy", "w1_lif_neuron_and_coding",
            "w2_surrogate_gradients_training", "w3_bn_vs_bntt", "w4_early_exit_and_robustness"]
# the py:percent sources: the parameters and workshop checks read them too, not only their .ipynb
NOTEBOOKS_AND_SOURCES = NOTEBOOKS + [path.with_suffix(".py") for path in NOTEBOOKS]


def _ids(path: Path) -> str:
    return path.stem


def _read(path: Path) -> nbformat.NotebookNode:
    """A notebook from its .ipynb, or as jupytext reads it from its .py."""
    return jupytext.read(path) if path.suffix == ".py" else nbformat.read(path, as_version=4)


def _parameters_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


# ------------------------------------------------------------------------------- static checks
def test_every_expected_notebook_is_there():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


def test_every_notebook_is_paired_with_its_py_percent_source():
    assert sorted(path.stem for path in NOTEBOOK_DIR.glob("*.py")) == EXPECTED
    config = load_jupytext_config(str(NOTEBOOK_DIR))  # notebooks/jupytext.toml: JupyterLab saves both files
    assert all(config.default_formats(str(path)) == "ipynb,py:percent" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_and_its_py_source_hold_the_same_cells(path):
    from bntt_core.notebook_runner import SYNC_COMMAND, pair_difference

    difference = pair_difference(path)
    assert not difference, f"{difference}\nrun `{SYNC_COMMAND}` (the newer file of each pair wins)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_committed_notebook_is_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS_AND_SOURCES, ids=lambda path: path.name)
def test_parameters_cell_has_run_dirs_and_quick_false(path):
    cell = _parameters_cell(_read(path))
    assigned = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                assigned[target.id] = node.value
    assert "RUN_DIRS" in assigned and isinstance(assigned["RUN_DIRS"], ast.Dict)
    assert isinstance(assigned.get("QUICK"), ast.Constant) and assigned["QUICK"].value is False
    assert "OUTPUT_DIR" in assigned


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[0].isdigit()], ids=_ids)
def test_figure_notebook_opens_with_the_claim_and_ends_with_what_the_run_shows(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and "What the paper claims" in notebook.cells[0].source
    assert notebook.cells[-1].cell_type == "markdown" and "What this run shows" in notebook.cells[-1].source


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS_AND_SOURCES if p.stem.startswith("w")],
                         ids=lambda path: path.name)
def test_workshop_exercises_are_followed_by_hidden_solutions(path):
    cells = _read(path).cells
    exercises = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and "Exercise" in cell.source]
    assert exercises, "a workshop notebook has exercises"
    for index in exercises:
        following = cells[index + 1]
        assert "solution" in following.metadata.get("tags", []), f"exercise in cell {index} has no solution after it"
        assert following.metadata.get("jupyter", {}).get("source_hidden") is True


# ------------------------------------------------------------------------------ execution
@pytest.fixture(scope="session")
def quick_cache(tmp_path_factory):
    """One QUICK run cache for the whole session, seen by every notebook kernel (inherited env), and
    the kernels' settings for QUICK mode (bntt_core.notebook_runner.QUICK_KERNEL_ENV)."""
    from bntt_core.notebook_runner import QUICK_KERNEL_ENV

    cache = tmp_path_factory.mktemp("quick_runs")
    settings = {"BNTT_QUICK_CACHE": str(cache), **QUICK_KERNEL_ENV}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield cache
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def png_export_works():
    """Whether kaleido renders PNGs on this machine (then every saved figure must have one)."""
    import plotly.graph_objects as go

    from bntt_core import viz

    return viz.figure_to_png(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), interactive=True) is not None


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_in_quick_mode(path, tmp_path, quick_cache, png_export_works):
    from bntt_core import notebook_runner

    figures = tmp_path / "figures"
    result = notebook_runner.execute(path, tmp_path / path.name, quick=True, output_dir=figures)
    assert result.ok, result.error
    executed = nbformat.read(tmp_path / path.name, as_version=4)
    errors = [output for cell in executed.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    expected = nbformat.read(path, as_version=4).metadata["bntt_figures"]
    assert expected, "every notebook saves at least one figure"
    suffixes = (".html", ".csv", ".png") if png_export_works else (".html", ".csv")
    for name in expected:
        for suffix in suffixes:
            written = figures / f"{name}{suffix}"
            assert written.is_file() and written.stat().st_size > 0, f"{written.name} was not written"
