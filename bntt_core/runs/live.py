"""Train from the browser: ONE background training job per run root, started, watched, stopped and resumed
without Streamlit (the dashboard's Train page is a thin view over this module).

A job is two commands chained in one background process (live_job.py run as a script, `run-job`, in its
own session and process group, so it outlives the browser tab and the dashboard server):

    bntt train --preset P --dataset D --norm N --T T --epochs E ... --out ROOT/NAME --quiet
    bntt analyze ROOT/NAME [--quick]          # only when the training exited 0 (analysis "none": skipped)

Both write into ROOT/NAME/.live-job.log (hidden, so the reserved run directory still counts as empty for
`bntt train`). The job's state lives on disk in the run root (live_job.py: the record and its lock).

`start_job` checks "is a job running?" and launches the runner while holding the lock, so two browser
tabs, two sessions or two server threads can never start two jobs. A record whose processes are gone
without an outcome (kill -9, a reboot) is recognised (pid dead, or reused: the start time differs) and
rewritten as stopped/failed, so it never blocks a new start. `stop_job` sends SIGTERM to the job's process
group (SIGKILL after a grace period): the training dies between two atomic writes, its checkpoint after
the last finished epoch stays, and `resume_job` continues it (`bntt train --resume RUN`, then the analysis).

    from bntt_core.runs import live as lt
    lt.start_job(lt.JobRequest(name="first", preset="quickstart", norm="bntt", num_steps=6, epochs=4))
    status = lt.job_status()                 # JobStatus: state, phase, metrics, gamma history, log tail
    lt.stop_job(); lt.resume_job()           # stop keeps the checkpoint; resume finishes and analyses
    python -m bntt_core.runs.live status [--root ROOT]     # the same from a shell
    python -m bntt_core.runs.live stop [--root ROOT]

The run root is $BNTT_TRAIN_ROOT, else the repository's runs/ (one of the dashboard's run roots). Inputs are
checked before anything is written: one `JobInputError` (a ValueError) per bad input. Tested by
tests/test_live_training.py (real tiny trainings through the CLI) and tests/test_dashboard_train.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bntt_core.runs.live_job import (  # noqa: F401  (the job's names, as lt.X)
    ACTIVE,
    ANALYSIS_DIR,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FAILED,
    FINISHED,
    GAMMA_HISTORY_FILE,
    IDLE,
    JOB_LOG,
    LOCK_FILE,
    METRICS_FILE,
    RECORD_FILE,
    RECORD_FORMAT,
    REPO_ROOT,
    ROOT_ENV,
    STOP_GRACE_S,
    STOPPED,
    WEIGHTS_FILE,
    JobStatus,
    describe_settings,
    is_active,
    job_alive,
    job_status,
    last_error_line,
    log_tail,
    main,
    now,
    process_start_time,
    read_record,
    record_lock,
    record_path,
    resumable,
    runner_argv,
    settle_stale_record,
    stop_job,
    train_root,
    write_record,
)

if TYPE_CHECKING:
    from bntt_core.runs.presets import Preset

WORKSHOP_PRESETS = ("quickstart", "workshop-fashion")  # each finishes in minutes on a CPU
WORKSHOP_DATASETS = ("mnist10k", "fashion-mnist", "mnist")  # 28×28 greyscale: the presets' networks fit them all
EPOCH_RANGE = (1, 10)
STEPS_RANGE = (1, 16)  # T
ANALYSIS_MODES = ("quick", "full", "none")  # bntt analyze --quick | bntt analyze | no analysis
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PHASES = ("starting", "training", "analysing")


class JobInputError(ValueError):
    """A request the Train page refuses (unknown preset, T or epochs out of range, a bad run name, ...)."""


class JobRunningError(RuntimeError):
    """A job is running already in this run root: one training at a time."""


# ------------------------------------------------------------------------------------ the request
@dataclass(frozen=True)
class JobRequest:
    """What the Train page asks for. `overrides`: more TrainConfig settings given as `bntt train` flags
    (tests use it for tiny runs: max_train_images, width, ...)."""

    name: str
    preset: str = "quickstart"
    dataset: str | None = None  # None: the preset's
    norm: str | None = None
    num_steps: int | None = None
    epochs: int | None = None
    seed: int = 0
    analysis: str = "quick"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    started_by: str = ""  # shown to other visitors: who started it (free text)


def workshop_presets() -> dict[str, Preset]:
    """The presets the Train page offers (those of WORKSHOP_PRESETS that exist), in that order."""
    from bntt_core.runs.presets import PRESETS

    return {name: PRESETS[name] for name in WORKSHOP_PRESETS if name in PRESETS}


def preset_defaults(preset: str) -> dict[str, Any]:
    """The form's values for `preset`: dataset, norm, num_steps, epochs (TrainConfig defaults filled in)."""
    offered = workshop_presets()
    if preset not in offered:
        raise JobInputError(_unknown_preset(preset))
    settings = offered[preset].settings
    return {"dataset": settings.get("dataset", "cifar10"), "norm": settings.get("norm", "bntt"),
            "num_steps": int(settings.get("num_steps", 25)), "epochs": int(settings.get("epochs", 120))}


def _unknown_preset(preset: str) -> str:
    from bntt_core.runs.presets import PRESETS

    offered = ", ".join(workshop_presets())
    if preset in PRESETS:
        return f"preset {preset!r} takes far longer than a workshop allows; the Train page offers {offered}"
    return f"unknown preset {preset!r}; choose one of {offered}"


def available_datasets() -> list[str]:
    """WORKSHOP_DATASETS whose files are on this machine (nothing is downloaded)."""
    return [name for name in WORKSHOP_DATASETS if _dataset_present(name)]


def _dataset_present(name: str) -> bool:
    from bntt_core import data

    try:  # the data module's own search (its sources' cheap presence tests); never reads the images
        builder = data._SOURCE_BUILDERS[name]
        return any(source.present() for source in builder(data.search_roots(None), False, 0))
    except Exception:  # an unexpected layout of the data module: let `bntt train` say what is missing
        return True


def _check_int(what: str, value: Any, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        shown = f"in [{low}, {high}]" if high is not None else f"≥ {low}"
        raise JobInputError(f"{what} must be an integer {shown} for a workshop run; got {value!r}")
    return value


def check_run_name(name: Any, root: Path) -> Path:
    """ROOT/name for a new run, or JobInputError: empty, escaping the root, odd characters, or taken."""
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise JobInputError("give the run a name (letters, digits, '.', '_' and '-')")
    if "/" in text or "\\" in text or text in (".", "..") or text.startswith("~") or "\x00" in text \
            or Path(text).is_absolute():
        raise JobInputError(f"run name {text!r} escapes the run root {root}: give a plain folder name "
                            f"(letters, digits, '.', '_' and '-')")
    if not NAME_PATTERN.fullmatch(text):
        raise JobInputError(f"run name {text!r} may hold only letters, digits, '.', '_' and '-' (at most 64, "
                            f"starting with a letter or digit)")
    path = root / text
    if path.exists() or path.is_symlink():
        raise JobInputError(f"a run named {text!r} exists already in {root}; choose another name")
    return path


def _flags(settings: Mapping[str, Any]) -> list[str]:
    """TrainConfig settings → `bntt train` flags (each checked against the CLI's parser)."""
    from bntt_core.cli import build_parser

    parser = build_parser()
    train_parser = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                        ).choices["train"]
    by_dest = {}
    for action in train_parser._actions:
        if action.option_strings:
            by_dest.setdefault(action.dest, action.option_strings[0])
    flags: list[str] = []
    for key, value in settings.items():
        if key == "spiking":
            if value is False:
                flags.append("--ann")
            continue
        if key not in by_dest or key in ("resume", "out", "quiet", "help"):
            raise JobInputError(f"setting {key!r} cannot be given to `bntt train`")
        if value is None:
            continue
        flag = by_dest[key]
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag.removeprefix("--"))
        elif isinstance(value, (list, tuple)):
            flags += [flag, ",".join(f"{float(part):g}" for part in value)]
        else:
            flags += [flag, str(value)]
    return flags


@dataclass(frozen=True)
class _Checked:
    run: Path
    settings: dict[str, Any]  # what the run will be trained with (preset + form + overrides)
    train_argv: list[str]
    analyze_argv: list[str] | None


def check_request(request: JobRequest, root: str | os.PathLike | None = None) -> _Checked:
    """Every input of `request` checked (one JobInputError, the first problem), nothing written."""
    root_path = train_root(root)
    offered = workshop_presets()
    if request.preset not in offered:
        raise JobInputError(_unknown_preset(request.preset))
    defaults = preset_defaults(request.preset)
    dataset = request.dataset if request.dataset is not None else defaults["dataset"]
    if dataset not in WORKSHOP_DATASETS:
        raise JobInputError(f"dataset {dataset!r} is not offered for workshop runs; choose one of "
                            f"{', '.join(WORKSHOP_DATASETS)}")
    if not _dataset_present(dataset):
        raise JobInputError(f"dataset {dataset!r} is not on this machine (nothing is downloaded from the Train "
                            f"page); `bntt train --dataset {dataset}` says where it looks and how to get it")
    from bntt_core.nn.norms import NORMS

    norm = request.norm if request.norm is not None else defaults["norm"]
    if norm not in NORMS:
        raise JobInputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    steps = _check_int("T (time steps)", request.num_steps if request.num_steps is not None
                       else defaults["num_steps"], *STEPS_RANGE)
    epochs = _check_int("epochs", request.epochs if request.epochs is not None else defaults["epochs"],
                        *EPOCH_RANGE)
    seed = _check_int("seed", request.seed, 0, None)
    if request.analysis not in ANALYSIS_MODES:
        raise JobInputError(f"unknown analysis {request.analysis!r}; choose one of {', '.join(ANALYSIS_MODES)}")
    fixed = {"dataset", "norm", "num_steps", "epochs", "seed", "preset"}
    clash = sorted(set(request.overrides) & fixed)
    if clash:
        raise JobInputError(f"give {', '.join(clash)} as the request's own field(s), not as overrides")
    run = check_run_name(request.name, root_path)
    form = {"dataset": dataset, "norm": norm, "num_steps": steps, "epochs": epochs, "seed": seed}
    settings = {**offered[request.preset].settings, **form, **dict(request.overrides), "preset": request.preset}
    from bntt_core.runs.config import TrainConfig

    try:  # the CLI would refuse it too, but only after the job had started and reserved the name
        TrainConfig.from_dict(settings).validate()
    except (TypeError, ValueError) as exc:
        raise JobInputError(str(exc)) from None
    flags = _flags({**form, **dict(request.overrides)})
    train_argv = [sys.executable, "-m", "bntt_core.cli", "train", "--preset", request.preset, *flags,
                  "--out", str(run), "--quiet"]
    return _Checked(run, settings, train_argv, _analyze_argv(run, request.analysis))


def _analyze_argv(run: Path, analysis: str) -> list[str] | None:
    if analysis == "none":
        return None
    return [sys.executable, "-m", "bntt_core.cli", "analyze", str(run), "--quiet",
            *(["--quick"] if analysis == "quick" else [])]


# ------------------------------------------------------------------------------------ start and resume
def _launch(root: Path, record: dict) -> dict:
    """Start the runner for `record` (lock held), fill in its pid and start time, write the record."""
    log = Path(record["run"]) / JOB_LOG
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{now()} job {record['job']} ({record['mode']}) started\n")
        handle.flush()
        process = subprocess.Popen(runner_argv(root, record["job"]), stdin=subprocess.DEVNULL, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=str(REPO_ROOT), env=env,
                                   close_fds=True)
    # reap it when it ends (else it stays a zombie child of this server); the job never depends on us
    threading.Thread(target=process.wait, name=f"bntt-job-{record['job'][:8]}", daemon=True).start()
    record.update(pid=process.pid, pid_start=process_start_time(process.pid))
    write_record(root, record)
    return record


def start_job(request: JobRequest, root: str | os.PathLike | None = None) -> dict:
    """Check `request`, reserve ROOT/NAME and start the job in the background; returns its record.

    JobInputError for bad input (nothing written), JobRunningError while another job runs in this root."""
    root_path = train_root(root)
    check_request(request, root_path)  # bad input is refused before the root is touched
    with record_lock(root_path):
        current = settle_stale_record(root_path)
        if is_active(current):
            raise JobRunningError(running_message(current))
        checked = check_request(request, root_path)  # again under the lock: the name may have been taken
        checked.run.mkdir(parents=False)
        record = {"format": RECORD_FORMAT, "job": uuid.uuid4().hex, "mode": "train", "run": str(checked.run),
                  "name": checked.run.name, "preset": request.preset, "settings": _plain(checked.settings),
                  "analysis": request.analysis, "train_argv": checked.train_argv,
                  "analyze_argv": checked.analyze_argv, "started": now(), "started_by": request.started_by,
                  "host": os.uname().nodename if hasattr(os, "uname") else "", "phase": "starting",
                  "state": ACTIVE, "stop_requested": False, "error": None}
        try:
            return _launch(root_path, record)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (checked.run / JOB_LOG).unlink()
                checked.run.rmdir()
            raise JobInputError(f"the training could not be started: {exc}") from exc


def resume_job(root: str | os.PathLike | None = None, *, started_by: str = "") -> dict:
    """Continue the last job's run (stopped or failed) in the background: `bntt train --resume RUN`, then its
    analysis. JobInputError when there is nothing to resume; JobRunningError while a job runs."""
    root_path = train_root(root)
    with record_lock(root_path):
        current = settle_stale_record(root_path)
        if is_active(current):
            raise JobRunningError(running_message(current))
        if not current:
            raise JobInputError("there is no stopped training to resume")
        run = Path(current["run"])
        if not resumable(current):
            raise JobInputError(f"{run.name} cannot be resumed: it has no checkpoint and its analysis is "
                                f"complete or was not asked for")
        record = {**current, "job": uuid.uuid4().hex, "mode": "resume",
                  "train_argv": [sys.executable, "-m", "bntt_core.cli", "train", "--resume", str(run), "--quiet"],
                  "analyze_argv": _analyze_argv(run, current.get("analysis", "quick")),
                  "started": now(), "started_by": started_by, "phase": "starting", "state": ACTIVE,
                  "stop_requested": False, "error": None, "ended": None, "returncode": None,
                  "child_pid": None, "child_start": None}
        return _launch(root_path, record)


def running_message(record: Mapping[str, Any]) -> str:
    """'A training is running already: ...' naming the run, its settings, who started it and since when."""
    settings = record.get("settings") or {}
    who = f" by {record['started_by']}" if record.get("started_by") else ""
    return (f"a training is running already: {record.get('name')} ({describe_settings(settings)}; "
            f"{record.get('phase', 'starting')}), started {record.get('started', '?')}{who}, pid {record.get('pid')}; "
            f"one training at a time: wait for it or stop it")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def wait_for_job(root: str | os.PathLike | None = None, *, timeout: float = 600.0,
                 poll: float = 0.2) -> JobStatus:
    """Poll until the job is no longer running and its runner process has exited (or `timeout` seconds
    pass: TimeoutError). The runner records "finished" a moment before it exits; callers that then check
    the process (or start the next job) must not see it still alive."""
    deadline = time.monotonic() + timeout
    while True:
        status = job_status(root)
        if not status.running and not (status.record and job_alive(status.record)):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"the job {status.record and status.record.get('name')} still runs after {timeout} s")
        time.sleep(poll)


def dismiss(root: str | os.PathLike | None = None) -> None:
    """Forget the last job's record (not while it runs); the run directory stays as it is."""
    root_path = train_root(root)
    with record_lock(root_path):
        record = settle_stale_record(root_path)
        if is_active(record):
            raise JobRunningError(running_message(record))
        record_path(root_path).unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
