"""Run a plan of trainings (and their analyses) a few at a time, safe to stop and start again.

The experiments of REPRODUCTION.md take hours on a 2-core CPU, more than one session. A plan file lists
one job per line; this script runs them in order, `--parallel` at a time (default 2: one per core, each
training with one thread), and after every training runs `bntt analyze` on it. Run it again after a stop
(or in a new session) and it carries on: a finished and analysed run is skipped, a run with a checkpoint
is resumed with `bntt train --resume`, an analysis that did not finish is redone.

    .venv/bin/python experiments/queue.py experiments/fashion_t20.plan            # run (Ctrl-C: stops)
    .venv/bin/python experiments/queue.py experiments/fashion_t20.plan --status   # a table of the runs
    nohup .venv/bin/python experiments/queue.py PLAN > runs/queue.log 2>&1 &      # in the background

Plan lines (blank lines and # comments ignored), `NAME: COMMAND`, the command being `bntt` arguments:

    fashion-t20-bntt-s0: train --preset fashion-t20 --norm bntt --seed 0 --data-dir ../shared/data
    fashion-t20-converted: convert {fashion-t20-ann} --steps 100          # {NAME}: that job's run dir
    fashion-t20-bntt-s1: train --preset fashion-t20 --seed 1 | --tables accuracy_by_step,early_exit_summary

After ` | `, arguments for its `bntt analyze` (default: every table).

Every run goes to `--root`/NAME (default runs/experiments); a job naming another job's run in braces waits
until that run is finished. Each job's output is in ROOT/NAME.out.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REFERENCE = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
BNTT = [sys.executable, "-m", "bntt_core.cli"]


@dataclass
class Job:
    name: str
    words: list[str]  # bntt arguments, {NAME} references unresolved
    analyze: list[str] = field(default_factory=list)  # extra `bntt analyze` arguments

    def needs(self) -> list[str]:
        return [m for word in self.words for m in REFERENCE.findall(word)]


def read_plan(path: Path) -> list[Job]:
    """The jobs of a plan file; one clear error for a malformed line, a duplicate or an unknown reference."""
    jobs: list[Job] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, colon, command = line.partition(":")
        name = name.strip()
        if not colon or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not command.strip():
            raise SystemExit(f"{path}:{number}: expected `NAME: train|convert ARGS`, got {raw.strip()!r}")
        command, _, analyze = command.partition(" | ")
        words, analyze_words = shlex.split(command), shlex.split(analyze)
        if words[0] not in ("train", "convert"):
            raise SystemExit(f"{path}:{number}: the command must be `train` or `convert`, got {words[0]!r}")
        if "--out" in words or "--resume" in words:
            raise SystemExit(f"{path}:{number}: leave out --out/--resume: the queue sets them (ROOT/{name})")
        if any(job.name == name for job in jobs):
            raise SystemExit(f"{path}:{number}: job {name!r} appears twice")
        if any(word in ("--out", "--resume") or not word.startswith("-") and i == 0
               for i, word in enumerate(analyze_words)):
            raise SystemExit(f"{path}:{number}: after ' | ' give only `bntt analyze` options, e.g. --tables a,b")
        jobs.append(Job(name, words, analyze_words))
    names = {job.name for job in jobs}
    for job in jobs:
        unknown = [n for n in job.needs() if n not in names]
        if unknown:
            raise SystemExit(f"{path}: job {job.name!r} refers to {unknown}, which the plan does not define")
    return jobs


def _held(lock: Path) -> bool:
    """Whether another process holds the run's writer lock (bntt_core.runs.run_lock: an flock)."""
    try:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def state_of(run: Path) -> str:
    """new | busy (another process is writing it: left alone) | partial (a checkpoint to resume) |
    trained (no complete analysis yet) | done | broken."""
    config_path = run / "config.json"
    if (run / ".bntt-writer.lock").is_file() and _held(run / ".bntt-writer.lock"):
        return "busy"
    if not run.exists() or not any(p for p in run.iterdir() if not p.name.startswith(".")):
        return "new"
    if (run / "checkpoint.pt").is_file():
        return "partial"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return "broken"
    if "result" not in config:
        return "broken"
    meta = run / "analysis" / "meta.json"
    return "done" if meta.is_file() and (run / "analysis" / ".complete").is_file() else "trained"


def commands(job: Job, root: Path) -> list[list[str]]:
    """What is left to run for `job`, from the state of its run directory."""
    run = root / job.name
    words = [REFERENCE.sub(lambda m: str(root / m.group(1)), w) for w in job.words]
    state = state_of(run)
    analyze = [*BNTT, "analyze", str(run), *job.analyze, "--quiet"]
    if state == "new":
        return [[*BNTT, *words, "--out", str(run), "--quiet"], analyze]
    if state == "partial":
        return [[*BNTT, "train", "--resume", str(run), "--quiet"], analyze]
    if state == "trained":
        return [analyze]
    if state == "busy":
        return []
    if state == "broken":
        raise SystemExit(f"{run} is neither a finished run nor resumable: look at it, then remove it to start over")
    return []


def run_job(job: Job, root: Path) -> subprocess.Popen:
    """Start the job's remaining commands as one background shell chain; marks the analysis complete."""
    steps = [shlex.join(c) for c in commands(job, root)]
    marker = shlex.quote(str(root / job.name / "analysis" / ".complete"))
    chain = " && ".join(steps) + f" && touch {marker}"
    log = open(root / f"{job.name}.out", "a")  # noqa: SIM115 - handed to the child, closed with it
    log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {chain}\n")
    log.flush()
    return subprocess.Popen(["bash", "-c", chain], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def status(jobs: list[Job], root: Path) -> None:
    print(f"{'run':34} {'state':8} {'epochs':>6} {'test %':>7} {'train s':>8}")
    for job in jobs:
        run = root / job.name
        state = state_of(run)
        epochs, accuracy, seconds = "", "", ""
        metrics = run / "metrics.csv"
        if metrics.is_file():
            rows = metrics.read_text().strip().splitlines()[1:]
            epochs = str(len(rows))
            seconds = f"{sum(float(r.split(',')[5]) for r in rows):.0f}" if rows else ""
        try:
            result = json.loads((run / "config.json").read_text()).get("result", {})
            accuracy = f"{100 * result['test_accuracy']:.2f}" if result else ""
        except (OSError, ValueError, KeyError):
            pass
        print(f"{job.name:34} {state:8} {epochs:>6} {accuracy:>7} {seconds:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--root", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--status", action="store_true", help="print the state of every run and exit")
    args = parser.parse_args(argv)
    jobs = read_plan(args.plan)
    args.root.mkdir(parents=True, exist_ok=True)
    if args.status:
        status(jobs, args.root)
        return 0
    running: dict[str, subprocess.Popen] = {}
    failed: set[str] = set()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the jobs too, as Ctrl-C does
    try:
        while True:
            for name, process in list(running.items()):
                if process.poll() is not None:
                    del running[name]
                    if process.returncode:
                        failed.add(name)
                        print(f"{name}: failed (exit {process.returncode}); see {args.root / name}.out", flush=True)
                    else:
                        print(f"{name}: done", flush=True)
            waiting = [j for j in jobs if j.name not in running and j.name not in failed
                       and state_of(args.root / j.name) != "done"]
            if not waiting and not running:
                break
            for job in waiting:
                if len(running) >= args.parallel:
                    break
                if state_of(args.root / job.name) == "busy":  # written by a process this queue did not start
                    continue
                if any(state_of(args.root / n) != "done" for n in job.needs()):
                    if any(n in failed for n in job.needs()):
                        failed.add(job.name)
                    continue
                print(f"{job.name}: {state_of(args.root / job.name)} → starting", flush=True)
                running[job.name] = run_job(job, args.root)
            time.sleep(5)
    except KeyboardInterrupt:
        for process in running.values():  # the whole chain: a killed training resumes from its checkpoint
            os.killpg(process.pid, signal.SIGTERM)
        print("stopped; run the same command again to carry on", flush=True)
        return 130
    status(jobs, args.root)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
