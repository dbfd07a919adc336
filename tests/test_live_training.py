"""The Train page's job manager (bntt_core/runs/live.py), with real tiny trainings through the CLI in
the background: a job trains and analyses its run, a second start while it runs is refused with one
message, a stale record (its process gone) is settled and blocks nothing, Stop (SIGTERM during epoch 2)
leaves a checkpoint that Resume finishes, and bad input gives one clear error each and writes nothing.
Every run root is a tmp_path; the only processes signalled are the ones these tests start.

    .venv/bin/python -m pytest tests/test_live_training.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bntt_core.analysis import gamma_history
from bntt_core.runs import find_runs
from bntt_core.runs import live as lt

# tiny runs on the embedded mnist10k (as tests/conftest.py TINY_TRAINING): seconds, one thread
TINY = dict(arch="mlp", width=0.05, batch_size=64, lr=0.1, max_train_images=256, max_test_images=100,
            eval_batch_size=100, device="cpu", threads=1, augment=False)
# slow enough to be stopped inside epoch 2: ~2 s per epoch on a busy 2-core CPU
SLOW = dict(arch="vgg5", width=0.125, batch_size=64, lr=0.1, max_train_images=1024, max_test_images=128,
            eval_batch_size=128, device="cpu", threads=1, augment=False)
JOB_TIMEOUT_S = 300


def request(name: str, **changes) -> lt.JobRequest:
    values = dict(name=name, preset="quickstart", dataset="mnist10k", norm="bntt", num_steps=2, epochs=2,
                  analysis="none", overrides=TINY, started_by="pytest")
    values.update(changes)
    return lt.JobRequest(**values)


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ------------------------------------------------------------------------------- a whole job
def test_a_job_trains_and_analyses_its_run_and_a_second_start_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    record = lt.start_job(request("first", analysis="quick"), root)
    assert record["state"] == lt.ACTIVE and record["pid"] and (root / lt.RECORD_FILE).is_file()
    assert lt.job_status(root).running

    with pytest.raises(lt.JobRunningError) as refused:  # another tab, another visitor: refused, nothing made
        lt.start_job(request("second"), root)
    message = str(refused.value)
    assert "running already" in message and "first" in message and "\n" not in message
    assert not (root / "second").exists()

    status = lt.wait_for_job(root, timeout=JOB_TIMEOUT_S)
    assert status.state == lt.FINISHED, (status.error, status.log_tail)
    run = root / "first"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["preset"] == "quickstart" and config["train"]["epochs"] == 2
    assert config["model"]["num_steps"] == 2 and config["model"]["norm"] == "bntt"
    assert config["result"]["epochs_done"] == 2 and (run / "weights.safetensors").is_file()
    assert not (run / "checkpoint.pt").exists()
    assert list(status.metrics["epoch"]) == [1, 2]
    assert {"train_loss", "train_acc", "test_acc"} <= set(status.metrics.columns)
    assert status.test_accuracy == pytest.approx(config["result"]["test_accuracy"])
    assert (run / "analysis" / "meta.json").is_file()  # bntt analyze --quick ran after the training
    assert {"accuracy_by_step", "gamma_mean"} <= set(status.analysis_tables)
    assert status.record["phase"] == "analysing" and status.error is None
    assert not lt.job_alive(status.record)
    assert status.gamma is not None  # RUN/gamma_history.csv, written by `bntt train` for a BNTT network
    assert gamma_history.epochs(status.gamma) == [0, 1, 2]
    assert any("analysis written" in line for line in status.log_tail)
    listed = [entry for entry in find_runs([root]) if entry.name == "first"]
    assert listed and listed[0].ok  # the Runs view finds it (the hidden log and record are no runs)
    assert len(status.metrics) == 2
    assert lt.GAMMA_HISTORY_FILE == gamma_history.GAMMA_HISTORY_FILE


# ------------------------------------------------------------------ stale record, stop, resume
def test_stale_record_is_settled_then_stop_keeps_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    (root / "crashed").mkdir(parents=True)
    (root / "crashed" / "checkpoint.pt").write_bytes(b"stand-in")
    stale = {"format": lt.RECORD_FORMAT, "job": "old", "mode": "train", "run": str(root / "crashed"),
             "name": "crashed", "settings": {"epochs": 2}, "analysis": "none", "pid": dead_pid(),
             "pid_start": None, "state": lt.ACTIVE, "phase": "training", "stop_requested": False}
    (root / lt.RECORD_FILE).write_text(json.dumps(stale))
    settled = lt.job_status(root)
    assert not settled.running and settled.state == lt.STOPPED and settled.resumable  # checkpoint left
    assert "ended without recording an outcome" in settled.error
    stale.update(pid=lt.os.getpid(), pid_start="1")  # a live pid that is another process: a reused pid
    (root / lt.RECORD_FILE).write_text(json.dumps(stale))
    assert not lt.job_status(root).running

    lt.start_job(request("slow", num_steps=4, epochs=4, overrides=SLOW), root)  # the stale job blocks nothing
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while len(lt.job_status(root).metrics) < 1:  # epoch 1 done: stop inside epoch 2
        assert lt.job_status(root).running, lt.job_status(root).log_tail
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status = lt.stop_job(root)
    run = root / "slow"
    assert status.state == lt.STOPPED, (status.error, status.log_tail)
    assert status.record["stop_requested"] and not lt.job_alive(status.record)
    assert (run / "checkpoint.pt").is_file() and not (run / "weights.safetensors").exists()
    assert 1 <= len(status.metrics) < 4 and status.resumable
    assert lt.stop_job(root).state == lt.STOPPED  # stopping again: nothing to stop, nothing happens

    lt.resume_job(root, started_by="pytest")
    status = lt.wait_for_job(root, timeout=JOB_TIMEOUT_S)
    assert status.state == lt.FINISHED, (status.error, status.log_tail)
    assert status.record["mode"] == "resume" and list(status.metrics["epoch"]) == [1, 2, 3, 4]
    assert (run / "weights.safetensors").is_file() and not (run / "checkpoint.pt").exists()
    assert "resumed" in (run / "train.log").read_text()
    assert not status.resumable
    with pytest.raises(lt.JobInputError, match="cannot be resumed"):
        lt.resume_job(root)


# ------------------------------------------------------------------------------- bad input
BAD_REQUESTS = {
    "unknown preset": (dict(preset="nope"), "unknown preset 'nope'"),
    "a preset that takes hours": (dict(preset="paper-cifar10"), "far longer than a workshop"),
    "a dataset not offered": (dict(dataset="cifar10"), "not offered"),
    "unknown norm": (dict(norm="batchnorm"), "unknown norm"),
    "T = 0": (dict(num_steps=0), "T (time steps) must be an integer in [1, 16]"),
    "T too large": (dict(num_steps=17), "T (time steps) must be an integer in [1, 16]"),
    "no epochs": (dict(epochs=0), "epochs must be an integer in [1, 10]"),
    "too many epochs": (dict(epochs=11), "epochs must be an integer in [1, 10]"),
    "epochs as text": (dict(epochs="3"), "epochs must be an integer"),
    "negative seed": (dict(seed=-1), "seed must be an integer ≥ 0"),
    "unknown analysis": (dict(analysis="maybe"), "unknown analysis"),
    "empty name": (dict(name="  "), "give the run a name"),
    "name escaping upwards": (dict(name="../outside"), "escapes the run root"),
    "absolute name": (dict(name="/tmp/elsewhere"), "escapes the run root"),
    "nested name": (dict(name="a/b"), "escapes the run root"),
    "name with a space": (dict(name="my run"), "only letters, digits"),
    "hidden name": (dict(name=".hidden"), "only letters, digits"),
    "existing name": (dict(name="taken"), "exists already"),
    "bad setting value": (dict(overrides={**TINY, "lr": -1.0}), "lr must be a positive number"),
    "setting without a flag": (dict(overrides={"lr_decay": 0.5}), "cannot be given to `bntt train`"),
    "form field as override": (dict(overrides={"epochs": 3}), "as the request's own field"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path: Path, case: str) -> None:
    root = tmp_path / "runs"
    (root / "taken").mkdir(parents=True)
    before = snapshot(tmp_path)
    changes, fragment = BAD_REQUESTS[case]
    with pytest.raises(lt.JobInputError) as error:
        lt.start_job(request(changes.pop("name", "new-run"), **changes), root)
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert snapshot(tmp_path) == before  # no run folder, no record, no lock file
    assert lt.job_status(root).state == lt.IDLE


def test_a_dataset_missing_here_is_refused_before_anything_starts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lt, "_dataset_present", lambda name: name != "fashion-mnist")
    with pytest.raises(lt.JobInputError, match="'fashion-mnist' is not on this machine"):
        lt.start_job(request("fm", dataset="fashion-mnist"), tmp_path)
    assert snapshot(tmp_path) == []
    assert "fashion-mnist" not in lt.available_datasets()


def test_nothing_to_stop_or_resume_and_the_form_defaults(tmp_path: Path) -> None:
    assert lt.stop_job(tmp_path).state == lt.IDLE
    with pytest.raises(lt.JobInputError, match="no stopped training"):
        lt.resume_job(tmp_path)
    assert set(lt.workshop_presets()) == set(lt.WORKSHOP_PRESETS)
    for name in lt.WORKSHOP_PRESETS:
        defaults = lt.preset_defaults(name)
        assert lt.STEPS_RANGE[0] <= defaults["num_steps"] <= lt.STEPS_RANGE[1]
        assert lt.EPOCH_RANGE[0] <= defaults["epochs"] <= lt.EPOCH_RANGE[1]
        assert defaults["dataset"] in lt.WORKSHOP_DATASETS
    assert lt.train_root(tmp_path) == tmp_path.resolve()


def test_the_runner_is_a_plain_script_that_does_not_import_torch(tmp_path: Path) -> None:
    """The background runner only waits for two commands: it must not carry torch (hundreds of MB)."""
    argv = lt.runner_argv(tmp_path, "job")
    script = argv[argv.index("run-job") - 1]
    probe = ("import runpy, sys\n"
             f"sys.argv = [{script!r}, 'status', '--root', {str(tmp_path)!r}]\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n")
    result = subprocess.run([*argv[:argv.index(script)], "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no training job" in result.stdout and "no torch" in result.stdout
