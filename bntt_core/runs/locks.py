"""Locks: one writer per run directory (`run_lock`), and THE one OS file lock of the project (`file_lock`).

    with run_lock("runs/first", "analysis"):      # RunLockedError naming the holder if another writes it
        ...
    @holds_run_lock("analysis")                   # the same for a function whose first argument is a run
    def analyze_run(path, ...): ...
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
from collections.abc import Iterator
from pathlib import Path

from bntt_core.runs.files import RunError, now_iso

logger = logging.getLogger(__name__)

RUN_LOCK_FILE = ".bntt-writer.lock"  # hidden: a run directory holding only it still counts as empty


class RunLockedError(RunError):
    """Another process is writing this run directory (training, resuming or analysing it)."""


_NO_LOCK_NOTED: list[bool] = []


def _fcntl():
    """The fcntl module, or None where the platform has none (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def _lock_holder(handle) -> str:
    """Who holds a lock, from what its holder wrote into the lock file (may be empty for an instant)."""
    try:
        handle.seek(0)
        holder = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "another process"
    where = f" on {holder['host']}" if holder.get("host") and holder.get("host") != platform.node() else ""
    what = f": {holder['command']}" if holder.get("command") else ""
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"process {holder['pid']}{where} ({holder.get('purpose', 'writing')}{what}{since})"


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, wait: bool, purpose: str = "writing",
              describe: str | None = None) -> Iterator[None]:
    """An OS lock (fcntl.flock) on the file `path` for the life of the block: THE one lock of the project.

    wait=True queues behind the holder (short critical sections: merging analysis/meta.json);
    wait=False raises RunLockedError naming the holder (its pid, command and since when: the holder
    writes them into the file). The kernel drops a flock when its process dies (kill -9 included), so a
    lock file left behind never blocks anyone. The file is removed on release; a waiter that got the
    lock on a removed file tries again (the inode check). Without fcntl (Windows) the block runs
    unlocked, with one logged note; a folder where the lock file cannot be created (read-only) likewise
    runs unlocked (its writes fail with their own error).
    """
    fcntl = _fcntl()
    path = Path(path)
    if fcntl is None:
        if not _NO_LOCK_NOTED:
            _NO_LOCK_NOTED.append(True)
            logger.warning("note: this platform has no fcntl file locks, so two processes writing one run "
                           "directory at once are not prevented here; run one writer per run")
        yield
        return
    while True:
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as exc:
            logger.debug("cannot create the lock file %s (%s); continuing unlocked", path, exc)
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _lock_holder(handle)
            handle.close()
            raise RunLockedError(f"{describe or path.parent} is being written by {holder}; wait for it to "
                                 f"finish or stop that process (a lock of a killed process is released "
                                 f"by itself)") from None
        except BaseException:
            handle.close()
            raise
        try:
            same_file = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        handle.close()  # the previous holder removed this file after we opened it: lock the new one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "purpose": purpose, "command": _command_line(),
                                 "host": platform.node(), "since": now_iso()}))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still holding the lock: a waiter that opened it retries (the inode check)
        handle.close()  # releases the flock


def _command_line() -> str:
    import shlex
    import sys

    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "/bntt")):
        argv[0] = "bntt"
    text = " ".join(shlex.quote(str(part)) for part in argv)
    return text if len(text) <= 200 else text[:197] + "..."


def run_lock(run_path: str | os.PathLike, purpose: str):
    """One writer per run directory: held for a whole training (train and resume) or analysis. A second
    writer gets RunLockedError naming the holding process. A missing directory is not locked (the
    caller reports it); in a torchrun job only rank 0 locks (it alone writes the run)."""
    run_path = Path(run_path)
    if not run_path.is_dir() or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    return file_lock(run_path / RUN_LOCK_FILE, wait=False, purpose=purpose, describe=str(run_path))


def holds_run_lock(purpose: str):
    """Decorator: the function's first argument is a run directory, locked with run_lock for the call."""
    import functools

    def decorate(function):
        @functools.wraps(function)
        def locked(run_path, *args, **kwargs):
            with run_lock(run_path, purpose):
                return function(run_path, *args, **kwargs)
        return locked
    return decorate
