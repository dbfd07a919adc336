"""Train from the browser: ONE background training job per run root, started, watched, stopped and resumed
without Streamlit (the dashboard's Train page is a thin view over this module).

A job is two commands chained in one background process (this file run as a script, `run-job`, in its own
session and process group, so it outlives the browser tab and the dashboard server):

    bntt train --preset P --dataset D --norm N --T T --epochs E ... --out ROOT/NAME --quiet
    bntt analyze ROOT/NAME [--quick]          # only when the training exited 0 (analysis "none": skipped)

Both write into ROOT/NAME/.live-job.log (hidden, so the reserved run directory still counts as empty for
`bntt train`). The job's state lives on disk in the run root:

    ROOT/.live-training.json   the record of the current (or last) job: run, settings, the runner's pid and
                               process start time, phase (starting | training | analysing), state
                               (running | finished | failed | stopped), the error line, when
    ROOT/.live-training.lock   an OS lock (fcntl.flock) held for every read-modify-write of the record

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
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import fcntl
except ImportError:  # Windows: no flock; the record is then unlocked (one dashboard server per root)
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

    from bntt_core.runs.presets import Preset

# Only the standard library at module level: the runner (`run-job`) is started as a plain script, so that
# a process that merely waits for two commands does not import torch (bntt_core/__init__ does: ~300 MB).
REPO_ROOT = Path(__file__).resolve().parents[2]
ROOT_ENV = "BNTT_TRAIN_ROOT"  # where the Train page writes its runs (default: the repository's runs/)
RECORD_FILE = ".live-training.json"
LOCK_FILE = ".live-training.lock"
JOB_LOG = ".live-job.log"  # in the run directory; hidden, so `bntt train` still sees the reserved folder as empty
GAMMA_HISTORY_FILE = "gamma_history.csv"  # = gamma_history.GAMMA_HISTORY_FILE (that module imports torch)
RECORD_FORMAT = "bntt-live-training/1"

WORKSHOP_PRESETS = ("quickstart", "workshop-fashion")  # each finishes in minutes on a CPU
WORKSHOP_DATASETS = ("mnist10k", "fashion-mnist", "mnist")  # 28×28 greyscale: the presets' networks fit them all
EPOCH_RANGE = (1, 10)
STEPS_RANGE = (1, 16)  # T
ANALYSIS_MODES = ("quick", "full", "none")  # bntt analyze --quick | bntt analyze | no analysis
STOP_GRACE_S = 10.0
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PHASES = ("starting", "training", "analysing")
# = bntt_core.runs.{CONFIG,WEIGHTS,METRICS,CHECKPOINT}_FILE and tables.ANALYSIS_DIR (not imported: see above)
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, CHECKPOINT_FILE = ("config.json", "weights.safetensors", "metrics.csv",
                                                            "checkpoint.pt")
ANALYSIS_DIR = "analysis"
ACTIVE, FINISHED, FAILED, STOPPED, IDLE = "running", "finished", "failed", "stopped", "idle"


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


def train_root(root: str | os.PathLike | None = None) -> Path:
    """The run root of the Train page: `root`, else $BNTT_TRAIN_ROOT, else the repository's runs/."""
    chosen = root if root is not None else (os.environ.get(ROOT_ENV, "").strip() or REPO_ROOT / "runs")
    return Path(chosen).expanduser().resolve()


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
    from bntt_core.runs.training import TrainConfig

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


# ------------------------------------------------------------------------------ processes and record
def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (/proc/PID/stat field 22), None where unknown: with the pid it
    names one process, so a pid reused by another program is never taken for the job."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: Any, start: Any) -> bool:
    """True when process `pid` runs and is the one recorded (same start time; zombies count as dead)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():  # Linux: exact (start time, state)
        try:
            text = stat.read_text()
        except OSError:
            return False
        fields = text[text.rfind(")") + 2:].split()
        if not fields or fields[0] in ("Z", "X"):
            return False
        return start is None or (len(fields) > 19 and fields[19] == str(start))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record_path(root: Path) -> Path:
    return root / RECORD_FILE


def read_record(root: str | os.PathLike | None = None) -> dict | None:
    """The job record of the run root (None when there is none or it is unreadable)."""
    path = _record_path(train_root(root))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def _now() -> str:
    """= bntt_core.runs.now_iso: UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _write_record(root: Path, record: dict) -> None:
    """Atomically (a temporary file in the root, then os.replace): a reader never sees half a record."""
    handle, temporary = tempfile.mkstemp(dir=root, prefix=".live-training-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=2)
        os.replace(temporary, _record_path(root))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _locked(root: Path):
    """The run root's job lock (fcntl.flock, waiting): held by start, resume, stop, the stale-record check
    and the runner's record updates; each holds it for milliseconds. The kernel drops it when its holder
    dies, so a killed process never leaves it held; the file itself stays (hidden)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _job_alive(record: Mapping[str, Any]) -> bool:
    return _alive(record.get("pid"), record.get("pid_start")) or \
        _alive(record.get("child_pid"), record.get("child_start"))


def _is_active(record: Mapping[str, Any] | None) -> bool:
    return bool(record) and record.get("state") == ACTIVE


def _settle_stale(root: Path) -> dict | None:
    """Under the lock: a record still 'running' whose processes are gone becomes stopped (if asked to
    stop, or if a checkpoint is left to resume from) or failed, with the reason. Returns the record."""
    record = read_record(root)
    if _is_active(record) and not _job_alive(record):
        run = Path(record["run"])
        resumable = (run / CHECKPOINT_FILE).is_file()
        record.update(state=STOPPED if record.get("stop_requested") or resumable else FAILED,
                      ended=_now(),
                      error=record.get("error") or ("stopped on request" if record.get("stop_requested") else
                                                    f"the job's process (pid {record.get('pid')}) ended without "
                                                    f"recording an outcome (killed, or the machine restarted)"))
        _write_record(root, record)
    return record


def runner_argv(root: Path, job: str) -> list[str]:
    """The runner's command: this file as a script (not `-m bntt_core...`, which imports the package and with
    it torch); -P (Python ≥ 3.11) keeps bntt_core/ off its import path."""
    isolate = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *isolate, str(Path(__file__).resolve()), "run-job", "--root", str(root), "--job", job]


def _launch(root: Path, record: dict) -> dict:
    """Start the runner for `record` (lock held), fill in its pid and start time, write the record."""
    log = Path(record["run"]) / JOB_LOG
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{_now()} job {record['job']} ({record['mode']}) started\n")
        handle.flush()
        process = subprocess.Popen(runner_argv(root, record["job"]), stdin=subprocess.DEVNULL, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=str(REPO_ROOT), env=env,
                                   close_fds=True)
    # reap it when it ends (else it stays a zombie child of this server); the job never depends on us
    threading.Thread(target=process.wait, name=f"bntt-job-{record['job'][:8]}", daemon=True).start()
    record.update(pid=process.pid, pid_start=process_start_time(process.pid))
    _write_record(root, record)
    return record


def start_job(request: JobRequest, root: str | os.PathLike | None = None) -> dict:
    """Check `request`, reserve ROOT/NAME and start the job in the background; returns its record.

    JobInputError for bad input (nothing written), JobRunningError while another job runs in this root."""
    root_path = train_root(root)
    check_request(request, root_path)  # bad input is refused before the root is touched
    with _locked(root_path):
        current = _settle_stale(root_path)
        if _is_active(current):
            raise JobRunningError(running_message(current))
        checked = check_request(request, root_path)  # again under the lock: the name may have been taken
        checked.run.mkdir(parents=False)
        record = {"format": RECORD_FORMAT, "job": uuid.uuid4().hex, "mode": "train", "run": str(checked.run),
                  "name": checked.run.name, "preset": request.preset, "settings": _plain(checked.settings),
                  "analysis": request.analysis, "train_argv": checked.train_argv,
                  "analyze_argv": checked.analyze_argv, "started": _now(), "started_by": request.started_by,
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
    with _locked(root_path):
        current = _settle_stale(root_path)
        if _is_active(current):
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
                  "started": _now(), "started_by": started_by, "phase": "starting", "state": ACTIVE,
                  "stop_requested": False, "error": None, "ended": None, "returncode": None,
                  "child_pid": None, "child_start": None}
        return _launch(root_path, record)


def resumable(record: Mapping[str, Any] | None) -> bool:
    """A finished-with-trouble job that `resume_job` can complete: stopped or failed with a checkpoint left,
    or trained (weights written) with the asked-for analysis not done."""
    if not record or record.get("state") not in (STOPPED, FAILED):
        return False
    if "diverge" in str(record.get("error") or ""):  # resuming would diverge again: a new run with a lower lr
        return False
    run = Path(record["run"])
    if (run / CHECKPOINT_FILE).is_file():
        return True
    return (run / WEIGHTS_FILE).is_file() and record.get("analysis", "none") != "none" and \
        record.get("phase") == "analysing"


def running_message(record: Mapping[str, Any]) -> str:
    """'A training is running already: ...' naming the run, its settings, who started it and since when."""
    settings = record.get("settings") or {}
    who = f" by {record['started_by']}" if record.get("started_by") else ""
    return (f"a training is running already: {record.get('name')} ({describe_settings(settings)}; "
            f"{record.get('phase', 'starting')}), started {record.get('started', '?')}{who}, pid {record.get('pid')}; "
            f"one training at a time: wait for it or stop it")


def describe_settings(settings: Mapping[str, Any]) -> str:
    return (f"{settings.get('preset') or '-'}: {settings.get('dataset')}, norm {settings.get('norm')}, "
            f"T = {settings.get('num_steps')}, {settings.get('epochs')} epochs")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def stop_job(root: str | os.PathLike | None = None, *, grace: float = STOP_GRACE_S) -> JobStatus:
    """SIGTERM to the running job's process group, SIGKILL after `grace` seconds; the run keeps its last
    checkpoint (resume it with `resume_job`). Only the job's own processes are signalled: the pid and its
    start time must match the record. Without a running job: nothing happens."""
    root_path = train_root(root)
    with _locked(root_path):
        record = _settle_stale(root_path)
        if not _is_active(record):
            return job_status(root_path)
        record["stop_requested"] = True
        _write_record(root_path, record)
        _signal_job(record, signal.SIGTERM)
    deadline = time.monotonic() + max(0.0, grace)
    while _job_alive(record) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _job_alive(record):
        _signal_job(record, signal.SIGKILL)
        end = time.monotonic() + 5.0
        while _job_alive(record) and time.monotonic() < end:
            time.sleep(0.05)
    with _locked(root_path):
        _settle_stale(root_path)  # the runner records "stopped" itself; after SIGKILL this does
    return job_status(root_path)


def _signal_job(record: Mapping[str, Any], signum: int) -> None:
    """Signal the job's process group (the runner leads it: start_new_session), else its training child."""
    pid = record.get("pid")
    if _alive(pid, record.get("pid_start")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:  # the runner still leads its own group: the training is in it
                os.killpg(pid, signum)
                return
            os.kill(pid, signum)
    child = record.get("child_pid")
    if _alive(child, record.get("child_start")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signum)


# ------------------------------------------------------------------------------------ status
@dataclass
class JobStatus:
    """What the Train page shows: the record's job and what its run directory holds now."""

    state: str  # idle | running | finished | failed | stopped
    record: dict | None = None
    phase: str | None = None  # starting | training | analysing (the last one reached, when not running)
    metrics: pd.DataFrame | None = None  # metrics.csv: epoch, train_loss, train_acc, test_acc, ... (job_status: never None)
    gamma: pd.DataFrame | None = None  # RUN/gamma_history.csv when the training writes one
    log_tail: list[str] = field(default_factory=list)
    error: str | None = None
    test_accuracy: float | None = None  # config.json result (when training completed)

    @property
    def running(self) -> bool:
        return self.state == ACTIVE

    @property
    def run(self) -> Path | None:
        return Path(self.record["run"]) if self.record else None

    @property
    def epochs(self) -> int | None:
        settings = (self.record or {}).get("settings") or {}
        return settings.get("epochs")

    @property
    def resumable(self) -> bool:
        return resumable(self.record)

    @property
    def analysis_tables(self) -> list[str]:
        folder = self.run / ANALYSIS_DIR if self.run else None
        if folder is None or not folder.is_dir():
            return []
        return sorted(path.stem for path in folder.glob("*.csv"))


def _read_csv(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None  # written atomically; absent or from another program: nothing to show


def log_tail(run: Path, lines: int = 12) -> list[str]:
    """The last lines of the job's log (progress bars' carriage returns resolved)."""
    try:
        text = (run / JOB_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = [line.rsplit("\r", 1)[-1].rstrip() for line in text.splitlines()]
    return [row for row in rows if row.strip()][-lines:]


def last_error_line(run: Path) -> str | None:
    """The last `error: ...` line of the job's log, else its last line that looks like a failure."""
    tail = log_tail(run, 200)
    for line in reversed(tail):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()
    for line in reversed(tail):
        if any(word in line for word in ("Error", "error", "Traceback", "Killed")):
            return line.strip()
    return tail[-1] if tail else None


def job_status(root: str | os.PathLike | None = None) -> JobStatus:
    """The current job of the run root: its record (a stale one settled first) and its run's progress."""
    root_path = train_root(root)
    record = read_record(root_path)
    if _is_active(record) and not _job_alive(record):
        with _locked(root_path):
            record = _settle_stale(root_path)
    import pandas as pd

    if not record:
        return JobStatus(state=IDLE, metrics=pd.DataFrame())
    run = Path(record["run"])
    metrics = _read_csv(run / METRICS_FILE)
    gamma = _read_csv(run / GAMMA_HISTORY_FILE)
    accuracy = None
    with contextlib.suppress(Exception):
        accuracy = (json.loads((run / CONFIG_FILE).read_text()).get("result") or {}).get("test_accuracy")
    return JobStatus(state=str(record.get("state")), record=record, phase=record.get("phase"),
                     metrics=metrics if metrics is not None else pd.DataFrame(), gamma=gamma,
                     log_tail=log_tail(run), error=record.get("error"), test_accuracy=accuracy)


def wait_for_job(root: str | os.PathLike | None = None, *, timeout: float = 600.0,
                 poll: float = 0.2) -> JobStatus:
    """Poll until the job is no longer running (or `timeout` seconds pass: TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        status = job_status(root)
        if not status.running:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"the job {status.record and status.record.get('name')} still runs after {timeout} s")
        time.sleep(poll)


def dismiss(root: str | os.PathLike | None = None) -> None:
    """Forget the last job's record (not while it runs); the run directory stays as it is."""
    root_path = train_root(root)
    with _locked(root_path):
        record = _settle_stale(root_path)
        if _is_active(record):
            raise JobRunningError(running_message(record))
        _record_path(root_path).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ the runner
class _Runner:
    """The background process: train, then analyse; records phase and outcome; SIGTERM = stop."""

    def __init__(self, root: Path, job: str):
        self.root, self.job = root, job
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def _update(self, **changes: Any) -> bool:
        with _locked(self.root):
            record = read_record(self.root)
            if not record or record.get("job") != self.job:
                return False  # another job's record: never touch it
            record.update(changes)
            _write_record(self.root, record)
            return True

    def _on_term(self, signum: int, frame: Any) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def _step(self, phase: str, argv: Sequence[str], log: Path) -> int:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{_now()} {phase}: {' '.join(argv[1:])}\n")
            handle.flush()
            self.child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                          cwd=str(REPO_ROOT), close_fds=True)
        self._update(phase=phase, child_pid=self.child.pid, child_start=process_start_time(self.child.pid))
        if self.stopping:  # SIGTERM arrived while it started
            self._on_term(signal.SIGTERM, None)
        return self.child.wait()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        with _locked(self.root):
            record = read_record(self.root)
        if not record or record.get("job") != self.job:
            print(f"job {self.job} is not the run root's current job; nothing to do", file=sys.stderr)
            return 2
        run = Path(record["run"])
        log = run / JOB_LOG
        steps = [("training", record["train_argv"])]
        if record.get("analyze_argv"):
            steps.append(("analysing", record["analyze_argv"]))
        for phase, argv in steps:
            if self.stopping:
                break
            code = self._step(phase, argv, log)
            if self.stopping:
                break
            if code != 0:
                what = "training" if phase == "training" else "analysis"
                error = last_error_line(run) or f"the {what} exited with code {code}"
                self._update(state=FAILED, ended=_now(), returncode=code, error=error)
                return 1
        if self.stopping:
            self._update(state=STOPPED, ended=_now(), stop_requested=True,
                         error="stopped on request" + ("; resume it to continue from the last finished epoch"
                                                       if (run / CHECKPOINT_FILE).is_file() else ""))
            return 143
        self._update(state=FINISHED, ended=_now(), returncode=0, error=None)
        return 0


def _format_status(status: JobStatus) -> str:
    if status.record is None:
        return "no training job in this run root"
    record = status.record
    lines = [f"{record.get('name')}: {status.state} ({status.phase}); {describe_settings(record.get('settings') or {})}",
             f"run: {record.get('run')}", f"started {record.get('started')}, pid {record.get('pid')}"]
    if len(status.metrics):
        last = status.metrics.iloc[-1]
        lines.append(f"epoch {int(last['epoch'])}: loss {last['train_loss']:.4f}, train {100 * last['train_acc']:.2f}%, "
                     f"test {100 * last['test_acc']:.2f}%")
    if status.error:
        lines.append(f"note: {status.error}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bntt_core.runs.live run-job | status | stop` (run-job: what start_job launches)."""
    parser = argparse.ArgumentParser(prog="python -m bntt_core.runs.live", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    job = commands.add_parser("run-job", help="run a started job (launched by start_job; not for hand use)")
    job.add_argument("--root", required=True)
    job.add_argument("--job", required=True)
    for name in ("status", "stop"):
        command = commands.add_parser(name)
        command.add_argument("--root", default=None, help=f"the run root (default ${ROOT_ENV} or runs/)")
    args = parser.parse_args(argv)
    if args.command == "run-job":
        return _Runner(train_root(args.root), args.job).run()
    if args.command == "stop":
        print(_format_status(stop_job(args.root)))
        return 0
    print(_format_status(job_status(args.root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
