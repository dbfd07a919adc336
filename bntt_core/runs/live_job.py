"""The Train page's background job as it lives on disk, and the runner process that carries it out: the
job record, its lock, the job's status, stop, and `run-job`. The dashboard's side (checking a request,
starting and resuming a job) is live.py, which re-exports this module's names.

This file is also run as a plain script: `start_job` launches `python -P bntt_core/runs/live_job.py run-job
--root ROOT --job ID` (runner_argv) in its own session and process group, so the runner outlives the
browser tab and the dashboard server. Only the standard library is imported at module level (pandas only
inside job_status, when there is a run to show): a process that merely waits for two commands must not
carry torch, which importing anything of bntt_core does (its __init__ imports the engine: ~300 MB). For the
same reason the record is written and locked here with helpers of its own instead of bntt_core.runs'
files.py / locks.py: those are reached only through bntt_core/__init__, and their lock (removed on
release, refusing rather than waiting) is not the one the record needs.

    ROOT/.live-training.json   the record of the current (or last) job: run, settings, the runner's pid and
                               process start time, phase (starting | training | analysing), state
                               (running | finished | failed | stopped), the error line, when
    ROOT/.live-training.lock   an OS lock (fcntl.flock) held for every read-modify-write of the record

    python bntt_core/runs/live_job.py status [--root ROOT]     # = python -m bntt_core.runs.live status
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
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

REPO_ROOT = Path(__file__).resolve().parents[2]
ROOT_ENV = "BNTT_TRAIN_ROOT"  # where the Train page writes its runs (default: the repository's runs/)
RECORD_FILE = ".live-training.json"
LOCK_FILE = ".live-training.lock"
JOB_LOG = ".live-job.log"  # in the run directory; hidden, so `bntt train` still sees the reserved folder as empty
GAMMA_HISTORY_FILE = "gamma_history.csv"  # = gamma_history.GAMMA_HISTORY_FILE (that module imports torch)
RECORD_FORMAT = "bntt-live-training/1"
STOP_GRACE_S = 10.0
# = bntt_core.runs.{CONFIG,WEIGHTS,METRICS,CHECKPOINT}_FILE and tables.ANALYSIS_DIR (not imported: see above)
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, CHECKPOINT_FILE = ("config.json", "weights.safetensors", "metrics.csv",
                                                            "checkpoint.pt")
ANALYSIS_DIR = "analysis"
ACTIVE, FINISHED, FAILED, STOPPED, IDLE = "running", "finished", "failed", "stopped", "idle"


def train_root(root: str | os.PathLike | None = None) -> Path:
    """The run root of the Train page: `root`, else $BNTT_TRAIN_ROOT, else the repository's runs/."""
    chosen = root if root is not None else (os.environ.get(ROOT_ENV, "").strip() or REPO_ROOT / "runs")
    return Path(chosen).expanduser().resolve()


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


def record_path(root: Path) -> Path:
    return root / RECORD_FILE


def read_record(root: str | os.PathLike | None = None) -> dict | None:
    """The job record of the run root (None when there is none or it is unreadable)."""
    path = record_path(train_root(root))
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def now() -> str:
    """= bntt_core.runs.now_iso: UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def write_record(root: Path, record: dict) -> None:
    """Atomically (a temporary file in the root, then os.replace): a reader never sees half a record."""
    handle, temporary = tempfile.mkstemp(dir=root, prefix=".live-training-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=2)
        os.replace(temporary, record_path(root))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def record_lock(root: Path):
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


def job_alive(record: Mapping[str, Any]) -> bool:
    return _alive(record.get("pid"), record.get("pid_start")) or \
        _alive(record.get("child_pid"), record.get("child_start"))


def is_active(record: Mapping[str, Any] | None) -> bool:
    return bool(record) and record.get("state") == ACTIVE


def settle_stale_record(root: Path) -> dict | None:
    """Under the lock: a record still 'running' whose processes are gone becomes stopped (if asked to
    stop, or if a checkpoint is left to resume from) or failed, with the reason. Returns the record."""
    record = read_record(root)
    if is_active(record) and not job_alive(record):
        run = Path(record["run"])
        resumable = (run / CHECKPOINT_FILE).is_file()
        record.update(state=STOPPED if record.get("stop_requested") or resumable else FAILED,
                      ended=now(),
                      error=record.get("error") or ("stopped on request" if record.get("stop_requested") else
                                                    f"the job's process (pid {record.get('pid')}) ended without "
                                                    f"recording an outcome (killed, or the machine restarted)"))
        write_record(root, record)
    return record


def runner_argv(root: Path, job: str) -> list[str]:
    """The runner's command: this file as a script (not `-m bntt_core...`, which imports the package and with
    it torch); -P (Python ≥ 3.11) keeps bntt_core/ off its import path."""
    isolate = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *isolate, str(Path(__file__).resolve()), "run-job", "--root", str(root), "--job", job]


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


def describe_settings(settings: Mapping[str, Any]) -> str:
    return (f"{settings.get('preset') or '-'}: {settings.get('dataset')}, norm {settings.get('norm')}, "
            f"T = {settings.get('num_steps')}, {settings.get('epochs')} epochs")


# ------------------------------------------------------------------------------------ stop
def stop_job(root: str | os.PathLike | None = None, *, grace: float = STOP_GRACE_S) -> JobStatus:
    """SIGTERM to the running job's process group, SIGKILL after `grace` seconds; the run keeps its last
    checkpoint (resume it with `resume_job`). Only the job's own processes are signalled: the pid and its
    start time must match the record. Without a running job: nothing happens."""
    root_path = train_root(root)
    with record_lock(root_path):
        record = settle_stale_record(root_path)
        if not is_active(record):
            return job_status(root_path)
        record["stop_requested"] = True
        write_record(root_path, record)
        _signal_job(record, signal.SIGTERM)
    deadline = time.monotonic() + max(0.0, grace)
    while job_alive(record) and time.monotonic() < deadline:
        time.sleep(0.1)
    if job_alive(record):
        _signal_job(record, signal.SIGKILL)
        end = time.monotonic() + 5.0
        while job_alive(record) and time.monotonic() < end:
            time.sleep(0.05)
    with record_lock(root_path):
        settle_stale_record(root_path)  # the runner records "stopped" itself; after SIGKILL this does
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
    if is_active(record) and not job_alive(record):
        with record_lock(root_path):
            record = settle_stale_record(root_path)
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


# ------------------------------------------------------------------------------------ the runner
class _Runner:
    """The background process: train, then analyse; records phase and outcome; SIGTERM = stop."""

    def __init__(self, root: Path, job: str):
        self.root, self.job = root, job
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def _update(self, **changes: Any) -> bool:
        with record_lock(self.root):
            record = read_record(self.root)
            if not record or record.get("job") != self.job:
                return False  # another job's record: never touch it
            record.update(changes)
            write_record(self.root, record)
            return True

    def _on_term(self, signum: int, frame: Any) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def _step(self, phase: str, argv: Sequence[str], log: Path) -> int:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{now()} {phase}: {' '.join(argv[1:])}\n")
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
        with record_lock(self.root):
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
                self._update(state=FAILED, ended=now(), returncode=code, error=error)
                return 1
        if self.stopping:
            self._update(state=STOPPED, ended=now(), stop_requested=True,
                         error="stopped on request" + ("; resume it to continue from the last finished epoch"
                                                       if (run / CHECKPOINT_FILE).is_file() else ""))
            return 143
        self._update(state=FINISHED, ended=now(), returncode=0, error=None)
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
