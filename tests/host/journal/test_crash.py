"""Crash test with real processes: SIGKILL a journaled run at random moments, resume it each time.

``crash_worker.py`` runs a chain, a fan-out and a map step (35 calls, several in flight at once) with a
SQLite journal, logging every call when it starts. The test kills it with SIGKILL at a random moment
(a random delay after it starts, or just after the log grows by a few lines), reads what the journal had
committed, and resumes the run in a new process, until a process finishes it. Then:

(a) no call whose completion was committed before a kill ran again in a later process;
(b) the final result equals an uninterrupted run's (same run id, its own journal), and so does ``replay``;
(c) nothing is lost: every call that had started and was not committed at a kill ran again later, every
    call completed exactly once in the journal, every step has its record and succeeded.

``FLOWKERNEL_CRASH_KILLS=300`` kills that many times per driver (runs of up to ``KILLS_PER_RUN`` kills
each, in one journal file); ``FLOWKERNEL_CRASH_SEED`` replays a failing seed.
"""

from __future__ import annotations

import json
import os
import random
import select
import shlex
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from flowkernel.errors import RunNotFoundError
from flowkernel.host import installed_drivers, load_driver
from flowkernel.host.journal import SqliteJournal, replay

from . import crash_worker

WORKER = Path(crash_worker.__file__)
KILLS = int(os.environ.get("FLOWKERNEL_CRASH_KILLS", "8"))
KILLS_PER_RUN = 12
AHEAD = 2  # gated workers started in advance
DEADLINE = 30.0  # seconds any one wait may take before the test fails instead of hanging

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


class Worker:
    """A ``crash_worker.py --gate`` process: started up, waiting for its run's arguments."""

    def __init__(self, driver: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--gate", "--driver", driver],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def go(self, journal: Path, log: Path, run_id: str, *, resume: bool) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline() if ready else "nothing"
        if line != "ready\n":
            self.fail(f"worker did not start (said {line!r})")
        self.proc.stdin.write(shlex.join([str(journal), str(log), run_id, *(["--resume"] if resume else [])]) + "\n")
        self._close_stdin()

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            self.proc.stdin = None  # so communicate() does not flush a closed pipe

    def finish(self) -> tuple[str, str]:
        """Wait for the process; its stdout and stderr."""
        try:
            return self.proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.fail(f"worker did not finish within {DEADLINE} s")

    def fail(self, what: str) -> NoReturn:
        self.proc.kill()
        _, err = self.proc.communicate()
        pytest.fail(f"{what}; exit code {self.proc.returncode}; stderr:\n{err}", pytrace=False)

    def dismiss(self) -> None:
        """End a worker that never got its arguments (EOF on stdin makes it exit), or kill one still running."""
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self._close_stdin()
            else:
                self.proc.kill()
        self.proc.communicate()


class Pool:
    """A few workers started in advance, so interpreter start-up overlaps the runs."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        self.waiting: deque[Worker] = deque()
        self.started: list[Worker] = []

    def take(self) -> Worker:
        while len(self.waiting) <= AHEAD:
            self.waiting.append(Worker(self.driver))
        worker = self.waiting.popleft()
        self.started.append(worker)
        return worker

    def close(self) -> None:
        for worker in (*self.started, *self.waiting):
            worker.dismiss()


@dataclass
class Segment:
    """One process's part of a run."""

    pid: int
    committed_before: frozenset[str]
    """The calls whose completions the journal held when this process started."""
    committed_at_kill: frozenset[str] | None = None
    """... and when it was killed (``None``: it finished the run)."""
    how: str = ""


@dataclass
class CrashedRun:
    run_id: str
    seed: int
    segments: list[Segment] = field(default_factory=list)
    result: dict[str, Any] | None = None

    def history(self) -> str:
        return f"seed {self.seed} (FLOWKERNEL_CRASH_SEED={self.seed}), run {self.run_id!r}, kills: " + "; ".join(
            f"#{k} {s.how}" for k, s in enumerate(self.segments)
        )


def log_lines(log: Path) -> list[tuple[int, str]]:
    """(pid, call id) for every call started, in order."""
    if not log.exists():
        return []
    return [(int(pid), call_id) for pid, call_id in (line.split(" ", 1) for line in log.read_text().splitlines())]


def count_lines(log: Path) -> int:
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def committed(journal: Path, run_id: str) -> frozenset[str] | None:
    """The call ids whose completions the journal holds; ``None`` if the run was not even begun."""
    with SqliteJournal(journal) as opened:
        try:
            recorded = opened.load(run_id)
        except RunNotFoundError:
            return None
    return frozenset(c.call_id for entry in recorded.entries for c in entry.completions)


def kill_somewhere(rng: random.Random, worker: Worker, log: Path) -> str:
    """Kill ``worker`` at a random moment; say when."""
    if rng.random() < 0.3:  # anywhere: opening the journal, replaying it, or early calls
        delay = rng.uniform(0, 0.04)
        time.sleep(delay)
        how = f"{delay * 1000:.1f} ms after go"
    else:  # just after a call starts: several calls in flight
        more = rng.randint(1, 6)
        target = count_lines(log) + more
        deadline = time.monotonic() + DEADLINE
        while worker.proc.poll() is None and count_lines(log) < target:
            if time.monotonic() > deadline:
                worker.fail(f"the log did not grow by {more} lines within {DEADLINE} s")
            time.sleep(0.001)
        delay = rng.uniform(0, 0.003)
        time.sleep(delay)
        how = f"{delay * 1000:.1f} ms after {more} more calls started"
    worker.proc.kill()
    return how


def crash_run(pool: Pool, tmp: Path, journal: Path, run_id: str, kills: int, seed: int) -> CrashedRun:
    """Run ``run_id`` to the end in worker processes, killing ``kills`` of them."""
    rng = random.Random(f"{seed}/{run_id}")
    log = tmp / f"{run_id}.log"
    run = CrashedRun(run_id, seed)
    before: frozenset[str] | None = None  # None: the run has not begun
    while True:
        worker = pool.take()
        worker.go(journal, log, run_id, resume=before is not None)
        segment = Segment(worker.pid, before or frozenset())
        run.segments.append(segment)
        killed = len(run.segments) <= kills
        if killed:
            segment.how = kill_somewhere(rng, worker, log)
        out, err = worker.finish()
        if worker.proc.returncode == 0:
            segment.how += " (finished first)" if killed else "finished"
            run.result = json.loads(out.split("result ", 1)[1])
            return run
        if worker.proc.returncode != -signal.SIGKILL:
            pytest.fail(f"{run.history()}\nworker exited {worker.proc.returncode}:\n{out}{err}", pytrace=False)
        # A run killed before its header was committed does not exist yet: the next process starts it.
        before = committed(journal, run_id)
        segment.committed_at_kill = before or frozenset()


def reference(tmp: Path, run_id: str) -> tuple[dict[str, Any], list[str]]:
    """An uninterrupted run of the same flow, same run id, in its own journal: its canonical result and calls."""
    log = tmp / f"reference-{run_id}.log"
    flow = crash_worker.build_flow(str(log))
    with SqliteJournal(tmp / f"reference-{run_id}.db") as journal:
        result = load_driver("sync").run_blocking(
            flow, crash_worker.INPUTS, max_concurrency=crash_worker.MAX_CONCURRENCY, journal=journal, run_id=run_id
        )
    return result.canonical(), [call_id for _, call_id in log_lines(log)]


def check(run: CrashedRun, tmp: Path, journal_path: Path) -> int:
    """Assert (a), (b) and (c) for one crashed run; the number of calls its kills interrupted."""
    context = run.history()
    started = log_lines(tmp / f"{run.run_id}.log")
    by_pid: dict[int, list[str]] = {}
    for pid, call_id in started:
        by_pid.setdefault(pid, []).append(call_id)
    assert set(by_pid) <= {s.pid for s in run.segments}, context

    interrupted = 0
    for k, segment in enumerate(run.segments):
        # (a) nothing committed before this process started ran again in it
        again = [c for c in by_pid.get(segment.pid, []) if c in segment.committed_before]
        assert not again, f"{context}\nprocess #{k} ran calls already committed: {again}"
        if segment.committed_at_kill is None:
            continue
        # (c) every call started up to this kill and not committed at it ran again later
        so_far = {c for s in run.segments[: k + 1] for c in by_pid.get(s.pid, [])}
        later = {c for s in run.segments[k + 1 :] for c in by_pid.get(s.pid, [])}
        lost = so_far - segment.committed_at_kill
        interrupted += len(lost)
        assert lost <= later, f"{context}\ncalls in flight at kill #{k} never ran again: {sorted(lost - later)}"

    expected, calls = reference(tmp, run.run_id)
    with SqliteJournal(journal_path) as journal:
        recorded = journal.load(run.run_id)
        replayed = replay(crash_worker.build_flow(None), journal, run.run_id)
    completions = [c.call_id for entry in recorded.entries for c in entry.completions]
    assert sorted(completions) == sorted(calls), f"{context}\neach call must be completed exactly once"
    assert {c for _, c in started} == set(calls), context
    # (b) the same result as an uninterrupted run, from the last process and from the journal alone
    assert run.result == expected, context
    assert replayed.canonical() == expected, context
    assert recorded.status == "succeeded", context
    flow = crash_worker.build_flow(None)
    assert [(s.id, s.status) for s in replayed.steps] == [(s.id, "succeeded") for s in flow.steps], context
    return interrupted


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_killed_runs_resume_without_rerunning_or_losing_calls(driver: str, tmp_path: Path) -> None:
    if driver not in installed_drivers():
        pytest.skip(f"the {driver} driver is not installed")
    seed = int(os.environ.get("FLOWKERNEL_CRASH_SEED", random.randrange(2**32)))
    print(f"FLOWKERNEL_CRASH_SEED={seed}")  # shown with any failure
    journal = tmp_path / "journal.db"
    kills_left = KILLS if driver == "sync" or "FLOWKERNEL_CRASH_KILLS" in os.environ else KILLS // 2
    interrupted = 0
    runs: list[CrashedRun] = []
    pool = Pool(driver)
    try:
        while kills_left > 0:
            run = crash_run(pool, tmp_path, journal, f"r{len(runs)}", min(kills_left, KILLS_PER_RUN), seed)
            runs.append(run)
            kills_left -= sum(s.committed_at_kill is not None for s in run.segments)
            interrupted += check(run, tmp_path, journal)
            assert len(runs) <= KILLS, f"seed {seed}: runs keep finishing before they are killed"
    finally:
        pool.close()
    with SqliteJournal(journal) as opened:
        listed = {s.run_id: s.status for s in opened.runs()}
        assert not opened.pickles  # the crash trials run on the default codec: tagged JSON, not pickles
    assert listed == {run.run_id: "succeeded" for run in runs}, f"seed {seed}"
    # Without a kill that caught calls in flight, this test would prove nothing.
    assert interrupted > 0, f"seed {seed}: no kill landed while a call was in flight: " + runs[0].history()
