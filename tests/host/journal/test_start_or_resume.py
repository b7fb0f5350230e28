"""Start-or-resume (``resume=True`` with inputs) and deleting a run, so its id can be used again."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowkernel import Flow, Input, Ref, Step, tool
from flowkernel.cli.app import cli
from flowkernel.errors import ResumeError, RunExistsError, RunNotFoundError
from flowkernel.events import Event, StepStarted
from flowkernel.host import load_driver
from flowkernel.host.journal import RunLeasedError, SqliteJournal

CALLS: list[str] = []


@tool
def inc(n: int, name: str) -> int:
    CALLS.append(name)
    return n + 1


FLOW = Flow(
    name="chain",
    steps=[
        Step(id="a", tool=inc, arguments={"n": Input("n"), "name": "a"}),
        Step(id="b", tool=inc, arguments={"n": Ref("a"), "name": "b"}),
    ],
)


@pytest.fixture(autouse=True)
def clean() -> None:
    CALLS.clear()


class Interrupt(Exception):
    pass


def test_start_or_resume_starts_a_run_the_journal_does_not_hold_then_resumes_it(tmp_path: Path) -> None:
    driver = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        first = driver.run(FLOW, {"n": 1}, journal=journal, run_id="r", resume=True)
        assert (first.outputs, CALLS) == ({"b": 3}, ["a", "b"])
        again = driver.run(FLOW, {"n": 1}, journal=journal, run_id="r", resume=True)  # the same inputs: accepted
        assert again == first
        assert CALLS == ["a", "b"]  # finished: replayed, nothing called
        with pytest.raises(ResumeError, match=r"started with other inputs \(\{'n': 1\}, not \{'n': 2\}\)"):
            driver.run(FLOW, {"n": 2}, journal=journal, run_id="r", resume=True)
        assert CALLS == ["a", "b"]


def test_start_or_resume_resumes_an_interrupted_run_where_it_was(tmp_path: Path) -> None:
    def stop_at_b(event: Event) -> None:
        if isinstance(event, StepStarted) and event.path == "b":
            raise Interrupt

    driver = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        with pytest.raises(Interrupt):
            driver.run(FLOW, {"n": 1}, journal=journal, run_id="r", resume=True, on_event=stop_at_b)
        result = driver.run(FLOW, {"n": 1}, journal=journal, run_id="r", resume=True)
    assert (result.outputs, CALLS) == ({"b": 3}, ["a", "b"])


def test_resuming_a_run_that_is_not_there_says_so(tmp_path: Path) -> None:
    with (
        SqliteJournal(tmp_path / "j.db") as journal,
        pytest.raises(RunNotFoundError, match=r"holds no run 'nope' .*pass its inputs with resume=True"),
    ):
        load_driver("sync").run(FLOW, journal=journal, run_id="nope", resume=True)


def test_a_deleted_run_id_can_be_used_again(tmp_path: Path) -> None:
    driver = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        driver.run(FLOW, {"n": 1}, journal=journal, run_id="r")
        with pytest.raises(RunExistsError):
            driver.run(FLOW, {"n": 5}, journal=journal, run_id="r")
        journal.delete("r")
        assert journal.runs() == []
        assert driver.run(FLOW, {"n": 5}, journal=journal, run_id="r").outputs == {"b": 7}
        with pytest.raises(RunNotFoundError, match="holds no run 'other'"):
            journal.delete("other")
    with sqlite3.connect(tmp_path / "j.db") as db:  # nothing of the first run is left behind
        assert db.execute("SELECT COUNT(*) FROM entries WHERE run_id = 'r'").fetchone()[0] == 2
    db.close()


def test_a_run_being_executed_elsewhere_is_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        load_driver("sync").run(FLOW, {"n": 1}, journal=journal, run_id="r")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET lease_holder = 'elsewhere:1:x:r', lease_expires = ?", (time.time() + 60,))
    db.close()
    with SqliteJournal(path) as journal:
        with pytest.raises(RunLeasedError, match="being executed elsewhere"):
            journal.delete("r")
        assert [run.run_id for run in journal.runs()] == ["r"]


def test_flowkernel_delete(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with SqliteJournal(path) as journal:
        load_driver("sync").run(FLOW, {"n": 1}, journal=journal, run_id="r")
    deleted = CliRunner().invoke(cli, ["delete", str(path), "r"])
    assert deleted.exit_code == 0, deleted.output
    assert f"deleted run r from {path}" in deleted.output
    again = CliRunner().invoke(cli, ["delete", str(path), "r"])
    assert again.exit_code == 2
    assert "holds no run 'r'" in again.output
    with SqliteJournal(path) as journal:
        assert journal.runs() == []
