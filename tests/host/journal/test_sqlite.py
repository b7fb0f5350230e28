"""The SQLite journal: exact values, listings, durability settings, reopening."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from pydantic import BaseModel

from flowkernel import Flow, Input, Raised, Returned, Step, tool
from flowkernel.errors import RunNotFoundError, ToolError
from flowkernel.host import load_driver
from flowkernel.host.journal import Entry, RunHeader, SqliteJournal, replay
from flowkernel.result import ErrorInfo, ErrorKind


class Point(BaseModel):
    x: int


HEADER = RunHeader("r", "f", "1", "hash", {"when": dt.date(2026, 1, 2)}, 4, 10.0, True, "flows.py:f")


def test_values_come_back_exactly_as_recorded(tmp_path: Path) -> None:
    values = [(1, 2), {3, 4}, dt.datetime(2026, 11, 22, 10, 0), Point(x=1), b"\x00", float("inf"), None]
    error = ErrorInfo(ErrorKind.TOOL, "ValueError", "bad", "a")
    with SqliteJournal(tmp_path / "j.db", models=[Point]) as journal:
        journal.begin(HEADER)
        journal.append(
            "r", Entry(0, ("a@1 t",), tuple(Returned(f"a{k}@1", v, 0.5, 1.5) for k, v in enumerate(values))), 0
        )
        journal.append("r", Entry(1, (), (Raised("b@1", error, 2.0, 3.0),)), 1)
    with SqliteJournal(tmp_path / "j.db", models=[Point]) as reopened:
        recorded = reopened.load("r")
    assert recorded.header == HEADER
    assert [c.value for c in recorded.entries[0].completions] == values  # type: ignore[union-attr]
    assert recorded.entries[1].completions == (Raised("b@1", error, 2.0, 3.0),)
    assert recorded.status is None


@tool
def echo(v: str) -> str:
    return v


def test_runs_lists_every_run_with_its_progress(tmp_path: Path) -> None:
    flow = Flow(
        name="echoes", version="3", steps=[Step(id=f"s{k}", tool=echo, arguments={"v": Input("v")}) for k in range(3)]
    )
    with SqliteJournal(tmp_path / "j.db") as journal:
        load_driver("sync").run(flow, {"v": "x"}, journal=journal, run_id="done")
        journal.begin(RunHeader("open", "echoes", "3", "h", {}))
        journal.append("open", Entry(0, (), (Returned("s0@1", "x", 0.0, 0.0),)), 0)
        journal.append("open", Entry(1, (), (Returned("s1@1", "x", 0.0, 0.0),)), 1)
        done, unfinished = journal.runs()
    assert (done.run_id, done.flow_name, done.flow_version, done.status, done.steps_done) == (
        "done",
        "echoes",
        "3",
        "succeeded",
        3,
    )
    assert done.finished is not None
    assert done.started <= done.finished
    assert (unfinished.status, unfinished.steps_done, unfinished.entries, unfinished.finished) == (
        "incomplete",
        1,
        2,
        None,
    )


def test_the_durability_setting_is_sqlites_synchronous_mode(tmp_path: Path) -> None:
    for durability, mode in (("process", 1), ("power", 2)):  # NORMAL, FULL
        journal = SqliteJournal(tmp_path / f"{durability}.db", durability=durability)  # type: ignore[arg-type]
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == mode
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        journal.close()
    with pytest.raises(ValueError, match="durability must be 'process' or 'power'"):
        SqliteJournal(tmp_path / "x.db", durability="fast")  # type: ignore[arg-type]


def test_an_unknown_run_is_named_with_the_file(tmp_path: Path) -> None:
    with (
        SqliteJournal(tmp_path / "j.db") as journal,
        pytest.raises(RunNotFoundError, match=r"j\.db holds no run 'nope'"),
    ):
        journal.load("nope")


def test_the_file_is_marked_as_a_flowkernel_journal(tmp_path: Path) -> None:
    SqliteJournal(tmp_path / "j.db").close()
    meta = dict(sqlite3.connect(tmp_path / "j.db").execute("SELECT key, value FROM flowkernel_journal"))
    assert meta == {"format": "flowkernel journal", "version": "2", "codec": "json"}


def test_an_in_memory_journal_serves_one_process() -> None:
    steps = [Step(id="a", tool=echo, arguments={"v": Input("v")})]
    flow = Flow(name="echoes", steps=steps)
    with SqliteJournal(":memory:") as journal:
        load_driver("sync").run(flow, {"v": "x"}, journal=journal, run_id="r")
        resumed = load_driver("sync").run(flow, journal=journal, run_id="r", resume=True)
        assert (resumed.outputs, [run.status for run in journal.runs()]) == ({"a": "x"}, ["succeeded"])


@tool
def refuse(code: int) -> int:
    raise ToolError("the server refused the call", details={"code": code, "data": {"field": "q"}})


def test_error_records_keep_their_traceback_and_details_in_the_journal(tmp_path: Path) -> None:
    flow = Flow(name="refusing", steps=[Step(id="a", tool=refuse, arguments={"code": Input("code")})])
    with SqliteJournal(tmp_path / "j.db") as journal:
        ran = load_driver("sync").run(flow, {"code": -32602}, journal=journal, run_id="r")
    with SqliteJournal(tmp_path / "j.db") as reopened:
        [raised] = [c for entry in reopened.load("r").entries for c in entry.completions if isinstance(c, Raised)]
        replayed = replay(flow, reopened, "r")
    original = ran.step("a").error
    assert original is not None
    assert original.traceback is not None
    assert ", in refuse\n" in original.traceback
    for error in (raised.error, replayed.step("a").error, replayed.step("a").attempts[0].error):
        assert error == original
        assert error is not None
        assert error.traceback == original.traceback
        assert error.details == {"code": -32602, "data": {"field": "q"}}
