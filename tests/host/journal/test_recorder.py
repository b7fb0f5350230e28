"""Recording a run: command digests, the write-ahead append, where a stop ends the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowkernel import Cancel, Cancelled, Flow, Invoke, Returned, StartTimer, Step, StopRun, TimerFired, tool
from flowkernel.host.journal import RunRecorder, SqliteJournal, UnstorableValueError, digest, open_run


@tool
def noop() -> None:
    return None


def recorder(tmp_path: Path) -> tuple[RunRecorder, SqliteJournal]:
    journal = SqliteJournal(tmp_path / "j.db")
    opened = open_run(Flow(name="f", steps=[Step(id="a", tool=noop)]), None, {"journal": journal, "run_id": "r"})
    assert opened.recorder is not None
    return opened.recorder, journal


def test_the_digest_names_each_command() -> None:
    commands = [Invoke("a@1", "a", noop, {"x": 1}, 1), StartTimer("a@1/timeout", 2.5), Cancel("b@1")]
    assert digest(commands) == ["a@1 noop", "a@1/timeout timer 2.5", "b@1 cancel"]


def test_each_batch_is_one_entry_with_the_commands_issued_before_it(tmp_path: Path) -> None:
    run, journal = recorder(tmp_path)
    run.issued([Invoke("a@1", "a", noop, {}, 1), StartTimer("a@1/timeout", 1.0)])
    run.append([TimerFired("a@1/timeout")], 0)
    run.issued([Cancel("a@1")])
    run.append([Cancelled("a@1")], 0)
    entries = journal.load("r").entries
    assert [(e.seq, e.issued, e.completions) for e in entries] == [
        (0, ("a@1 noop", "a@1/timeout timer 1.0"), (TimerFired("a@1/timeout"),)),
        (1, ("a@1 cancel",), (Cancelled("a@1"),)),
    ]


def test_a_stop_ends_the_record_after_what_came_before_it_in_the_batch(tmp_path: Path) -> None:
    run, journal = recorder(tmp_path)
    run.append([Returned("a@1", 1, 0.0, 1.0), StopRun("Ctrl-C"), Returned("b@1", 2, 0.0, 1.0)], 0)
    run.append([Cancelled("c@1")], 0)
    [entry] = journal.load("r").entries
    assert entry.completions == (Returned("a@1", 1, 0.0, 1.0),)
    assert run.stopped


def test_a_value_that_cannot_be_recorded_is_a_typed_error_naming_the_call(tmp_path: Path) -> None:
    run, journal = recorder(tmp_path)
    with pytest.raises(
        UnstorableValueError,
        match=r"run 'r': cannot record the completions of a@1: UnstorableValueError: cannot store entry 0 of run 'r':"
        r" the value a@1 returned: the journal's codec has no tag for a function ",
    ):
        run.append([Returned("a@1", lambda: None, 0.0, 1.0)], 0)
    run.append([Returned("a@1", 1, 0.0, 1.0)], 0)  # nothing half-written: the next entry is entry 0
    assert [e.seq for e in journal.load("r").entries] == [0]
