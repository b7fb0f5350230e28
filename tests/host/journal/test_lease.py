"""Leases: a run being executed is leased in its journal, so a second resumer is refused at once, and a
lease whose holder died is taken over. With real processes (subprocess, SIGKILL), as the issue found it:
two processes resuming one run both executed calls."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flowkernel import Flow, Input, Step, tool
from flowkernel.errors import JournalWriteError
from flowkernel.events import Event, StepStarted
from flowkernel.host import load_driver
from flowkernel.host.journal import Entry, RunHeader, RunLeasedError, SqliteJournal
from flowkernel.protocol import Returned

from . import lease_worker

TIMEOUT = 60.0
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and select() on pipes")


class Worker:
    def __init__(self, journal: Path, run_id: str, mode: str, log: Path, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(lease_worker.__file__)), str(journal), run_id, mode, str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )

    def line(self) -> str:
        assert self.process.stdout is not None
        assert select.select([self.process.stdout], [], [], TIMEOUT)[0], "the worker said nothing"
        line = self.process.stdout.readline().strip()
        if not line:  # it ended: say why
            self.process.wait(TIMEOUT)
            assert self.process.stderr is not None
            raise AssertionError(f"the worker exited ({self.process.returncode}): {self.process.stderr.read()}")
        return line

    def finish(self) -> tuple[int, str]:
        out, err = self.process.communicate(timeout=TIMEOUT)
        return self.process.returncode, out + err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def calls(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), step) for pid, step in (line.split() for line in log.read_text().splitlines())]


def test_a_second_process_resuming_a_run_being_executed_is_refused_at_once(tmp_path: Path) -> None:
    journal, log = tmp_path / "journal.db", tmp_path / "calls.log"
    first = Worker(journal, "r", "start", log)
    try:
        assert first.line() == "started a"
        began = time.monotonic()
        second = Worker(journal, "r", "resume", log)
        code, output = second.finish()
        assert time.monotonic() - began < 20  # at once: no waiting for the lease to run out (30 s)
        assert code == 3, output
        by = f"by process {first.process.pid} on "
        assert output.startswith(f"leased {journal}: run 'r' is being executed elsewhere ({by}")
        log.with_name("calls.log.go").touch()
        assert first.finish() == (0, "started b\nstarted c\ndone succeeded\n")
    finally:
        first.kill()
    assert calls(log) == [(first.process.pid, "a"), (first.process.pid, "b"), (first.process.pid, "c")]
    # Once the run has ended, its lease is released: resuming replays it, calling nothing.
    assert Worker(journal, "r", "resume", log).finish() == (0, "done succeeded\n")
    assert len(calls(log)) == 3


def test_a_lease_whose_holder_was_killed_is_taken_over(tmp_path: Path) -> None:
    journal, log = tmp_path / "journal.db", tmp_path / "calls.log"
    first = Worker(journal, "r", "start", log)
    try:
        assert first.line() == "started a"
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(TIMEOUT)
    finally:
        first.kill()
    log.with_name("calls.log.go").touch()
    second = Worker(journal, "r", "resume", log)
    assert second.finish() == (0, "started a\nstarted b\nstarted c\ndone succeeded\n")
    pid = second.process.pid
    assert calls(log) == [(first.process.pid, "a"), (pid, "a"), (pid, "b"), (pid, "c")]


def test_many_resumers_at_once_execute_each_call_in_one_process_only(tmp_path: Path) -> None:
    journal, log = tmp_path / "journal.db", tmp_path / "calls.log"
    first = Worker(journal, "r", "start", log)
    try:
        assert first.line() == "started a"
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(TIMEOUT)
    finally:
        first.kill()
    log.with_name("calls.log.go").touch()
    resumers = [Worker(journal, "r", "resume", log) for _ in range(4)]
    outcomes = [resumer.finish() for resumer in resumers]
    winners = [r.process.pid for r, (code, _) in zip(resumers, outcomes, strict=True) if code == 0]
    refused = [out for code, out in outcomes if code == 3]
    assert len(winners) + len(refused) == 4, outcomes
    assert winners, outcomes
    # A resumer that came after the winner finished replays the finished run; none ran a call beside it.
    executed = calls(log)[1:]
    assert len({pid for pid, _ in executed}) == 1, executed
    assert executed[0][0] in winners
    assert [step for _, step in executed] == ["a", "b", "c"]


# ---- in one process -------------------------------------------------------------------------------


@tool
def echo(v: int) -> int:
    return v


FLOW = Flow(name="echo", steps=[Step(id="a", tool=echo, arguments={"v": Input("v")})])


def set_lease(path: Path, holder: str | None, expires: float | None) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET lease_holder = ?, lease_expires = ?", (holder, expires))
    db.close()


def lease_of(path: Path) -> tuple[Any, ...]:
    with sqlite3.connect(path) as db:
        row: tuple[Any, ...] = db.execute("SELECT lease_holder, lease_expires FROM runs").fetchone()
    db.close()
    return row


def test_a_lease_held_on_another_host_is_refused_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        journal.begin(RunHeader("r", FLOW.name, FLOW.version, "h", {"v": 1}))
        journal.release("r")
    set_lease(path, "elsewhere:123:abc:r", time.time() + 60)
    with SqliteJournal(path) as journal:
        with pytest.raises(RunLeasedError, match=r"executed elsewhere \(by process 123 on elsewhere") as refused:
            journal.acquire("r")
        assert refused.value.holder == "elsewhere:123:abc:r"
        set_lease(path, "elsewhere:123:abc:r", time.time() - 1)  # expired: its holder stopped renewing it
        journal.acquire("r")
        assert lease_of(path)[0].endswith(":r")
        assert not lease_of(path)[0].startswith("elsewhere")


def test_a_holder_that_lost_its_lease_cannot_write_beside_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        journal.begin(RunHeader("r", FLOW.name, FLOW.version, "h", {"v": 1}))
        journal.append("r", Entry(0, (), (Returned("a@1", 1, 0.0, 0.0),)), 0)
        set_lease(path, "elsewhere:123:abc:r", time.time() + 60)  # taken over while this one was paused
        with pytest.raises(RunLeasedError, match="lost its lease"):
            journal.append("r", Entry(1, (), (Returned("b@1", 1, 0.0, 0.0),)), 0)
    with SqliteJournal(path) as reopened:
        assert len(reopened.load("r").entries) == 1


def test_the_lease_is_renewed_while_the_run_goes_and_released_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    seen: list[tuple[Any, ...]] = []

    @tool
    def slow(v: int) -> int:
        first = lease_of(path)
        time.sleep(0.5)
        seen.extend([first, lease_of(path)])
        return v

    flow = Flow(name="slow", steps=[Step(id="a", tool=slow, arguments={"v": Input("v")})])
    with SqliteJournal(path, lease=0.3) as journal:
        load_driver("sync").run(flow, {"v": 1}, journal=journal, run_id="r")
    (holder, before), (same, after) = seen
    assert holder == same
    assert holder is not None
    assert after > before  # renewed in the background while the tool ran
    assert lease_of(path) == (None, None)


class Interrupt(Exception):
    pass


def test_a_run_stopped_by_an_exception_releases_its_lease(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    def stop(event: Event) -> None:
        if isinstance(event, StepStarted):
            raise Interrupt

    with SqliteJournal(path) as journal:
        with pytest.raises(Interrupt):
            load_driver("sync").run(FLOW, {"v": 1}, journal=journal, run_id="r", on_event=stop)
        assert lease_of(path) == (None, None)  # released though this journal is still open
    with SqliteJournal(path) as other:  # another journal object: another holder
        assert load_driver("sync").run(FLOW, journal=other, run_id="r", resume=True).outputs == {"a": 1}


def test_a_write_after_the_lease_is_lost_stops_the_run_as_a_journal_write_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"

    @tool
    def steal(v: int) -> int:
        set_lease(path, "elsewhere:123:abc:r", time.time() + 60)
        return v

    flow = Flow(name="stolen", steps=[Step(id="a", tool=steal, arguments={"v": Input("v")})])
    with SqliteJournal(path) as journal, pytest.raises(JournalWriteError, match="lost its lease"):
        load_driver("sync").run(flow, {"v": 1}, journal=journal, run_id="r")
