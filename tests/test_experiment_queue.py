"""experiments/queue.py: the plan file is read strictly and a run's state decides what is left to run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("experiment_queue", REPO_ROOT / "experiments" / "queue.py")
queue = importlib.util.module_from_spec(_spec)
sys.modules["experiment_queue"] = queue  # dataclasses look their module up there
_spec.loader.exec_module(queue)


def _plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "a.plan"
    path.write_text(text)
    return path


def test_the_shipped_plans_read() -> None:
    for plan in (REPO_ROOT / "experiments").glob("*.plan"):
        jobs = queue.read_plan(plan)
        assert jobs and all(job.words[0] in ("train", "convert") for job in jobs)


@pytest.mark.parametrize("text, message", [
    ("no colon here\n", "expected `NAME: train|convert ARGS`"),
    ("a: evaluate x\n", "must be `train` or `convert`"),
    ("a: train --out elsewhere\n", "leave out --out/--resume"),
    ("a: train\na: train\n", "appears twice"),
    ("b: convert {a} --steps 100\n", "refers to ['a']"),
    ("a: train | elsewhere --tables x\n", "only `bntt analyze` options"),
])
def test_a_bad_plan_is_one_error_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SystemExit) as raised:
        queue.read_plan(_plan(tmp_path, text))
    assert message in str(raised.value)


def test_what_is_left_follows_the_run_directory(tmp_path: Path) -> None:
    job = queue.read_plan(_plan(tmp_path, "# comment\nann: train --ann  # trailing\nconv: convert {ann} --steps 9\n"))[1]
    assert job.needs() == ["ann"]
    run = tmp_path / "conv"
    first = queue.commands(job, tmp_path)
    assert first[0][len(queue.BNTT):] == ["convert", str(tmp_path / "ann"), "--steps", "9", "--out", str(run),
                                          "--quiet"]
    assert first[1][-3:] == ["analyze", str(run), "--quiet"]
    run.mkdir()
    (run / ".bntt-writer.lock").write_text("")  # a leftover lock alone: still new
    assert queue.state_of(run) == "new"
    (run / "checkpoint.pt").write_text("")
    assert queue.state_of(run) == "partial"
    assert queue.commands(job, tmp_path)[0][-4:] == ["train", "--resume", str(run), "--quiet"]
    (run / "checkpoint.pt").unlink()
    (run / "config.json").write_text(json.dumps({"format": "bntt-run/2"}))
    assert queue.state_of(run) == "broken"
    with pytest.raises(SystemExit, match="neither a finished run nor resumable"):
        queue.commands(job, tmp_path)
    (run / "config.json").write_text(json.dumps({"result": {"test_accuracy": 0.5}}))
    assert queue.commands(job, tmp_path) == [[*queue.BNTT, "analyze", str(run), "--quiet"]]
    (run / "analysis").mkdir()
    (run / "analysis" / "meta.json").write_text("{}")
    (run / "analysis" / ".complete").write_text("")
    assert queue.state_of(run) == "done" and queue.commands(job, tmp_path) == []


def test_analysis_options_after_a_bar_reach_the_analysis(tmp_path: Path) -> None:
    job = queue.read_plan(_plan(tmp_path, "a: train --seed 1 | --tables accuracy_by_step,energy\n"))[0]
    assert job.words == ["train", "--seed", "1"]
    analyze = queue.commands(job, tmp_path)[1]
    assert analyze[len(queue.BNTT):] == ["analyze", str(tmp_path / "a"), "--tables", "accuracy_by_step,energy",
                                         "--quiet"]
