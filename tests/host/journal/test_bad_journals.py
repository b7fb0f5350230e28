"""Bad journals: truncated, corrupt, foreign, missing entries, unknown runs, values that cannot be recorded.

Each is refused with a typed error naming the file and what is wrong, and resuming from it raises before
any tool runs: a journal is never partly replayed (that would silently re-run calls that had completed).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowkernel import Flow, Input, Ref, Step, tool
from flowkernel.cli.app import cli
from flowkernel.errors import (
    CorruptJournalError,
    ForeignJournalError,
    JournalError,
    JournalWriteError,
    RunNotFoundError,
)
from flowkernel.events import Event, StepStarted
from flowkernel.host import installed_drivers, load_driver, partial_result
from flowkernel.host.journal import SqliteJournal, replay

STEPS = 40
CALLS: list[str] = []  # every call of ``inc``, across the module's runs


@tool
def inc(value: int) -> int:
    CALLS.append(f"inc({value})")
    return value + 1


FLOW = Flow(
    name="long-chain",
    version="1",
    steps=[
        Step(id="s00", tool=inc, arguments={"value": Input("start")}),
        *(Step(id=f"s{k:02}", tool=inc, arguments={"value": Ref(f"s{k - 1:02}")}) for k in range(1, STEPS)),
    ],
)


class Interrupt(Exception):
    """Stops the caller half-way, leaving a resumable run."""


def interrupt_at(step: str) -> Any:
    def on_event(event: Event) -> None:
        if isinstance(event, StepStarted) and event.path == step:
            raise Interrupt

    return on_event


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two journals of run ``r`` (one entry per step): ``finished``, and ``unfinished`` (stopped at step 25)."""
    where = tmp_path_factory.mktemp("journals")
    made = {}
    for kind in ("finished", "unfinished"):
        path = made[kind] = where / f"{kind}.db"
        with SqliteJournal(path) as journal:
            settings: dict[str, Any] = {"journal": journal, "run_id": "r", "max_concurrency": 1}
            if kind == "finished":
                load_driver("sync").run_blocking(FLOW, {"start": 0}, **settings)
            else:
                with pytest.raises(Interrupt):
                    load_driver("sync").run_blocking(FLOW, {"start": 0}, on_event=interrupt_at("s25"), **settings)
    return made


@pytest.fixture
def calls() -> Iterator[list[str]]:
    CALLS.clear()
    yield CALLS
    CALLS.clear()


def copy(journals: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}-copy.db"
    shutil.copy(journals[kind], path)
    return path


def refused(path: Path, error: type[JournalError], calls: list[str], run_id: str = "r") -> str:
    """Resume and replay from ``path`` both raise ``error``, naming the file, and no tool ran; the message."""
    messages = []
    with pytest.raises(error) as resumed, SqliteJournal(path) as journal:
        load_driver("sync").run_blocking(FLOW, journal=journal, run_id=run_id, resume=True)
    messages.append(str(resumed.value))
    with pytest.raises(error) as replayed, SqliteJournal(path) as journal:
        replay(FLOW, journal, run_id)
    messages.append(str(replayed.value))
    assert calls == [], f"a tool ran although the journal was refused ({messages[0]})"
    for message in messages:
        assert str(path) in message
        assert "\n" not in message, f"a journal error is one line: {message!r}"
    return messages[0]


DAMAGED = re.compile(r"damaged|missing|checksum|not readable")


# ---- truncated ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["finished", "unfinished"])
@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda size: 10, id="10 bytes (inside SQLite's magic)"),
        pytest.param(lambda size: 16, id="16 bytes (the magic alone)"),
        pytest.param(lambda size: 100, id="SQLite's header alone"),
        pytest.param(lambda size: 4096, id="the first page"),
        pytest.param(lambda size: 4096 + 1000, id="inside the second page"),
        pytest.param(lambda size: size // 2, id="half"),
        pytest.param(lambda size: size - 4096, id="the last page lost"),
        pytest.param(lambda size: size - 100, id="the last page cut"),
        pytest.param(lambda size: size - 1, id="one byte short"),
    ],
)
def test_a_truncated_journal_is_damaged(
    keep: Any, kind: str, journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, kind, tmp_path)
    with path.open("r+b") as file:
        file.truncate(keep(path.stat().st_size))
    damaged = path.read_bytes()
    assert DAMAGED.search(refused(path, CorruptJournalError, calls))
    # Refusing writes nothing: a lease written before the check once made a file cut inside its last page
    # whole again, and a second look found nothing wrong.
    assert path.read_bytes() == damaged


def test_no_truncation_at_all_lets_a_run_resume_from_part_of_its_record(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    """Every cut of the unfinished journal, 128 bytes apart, is refused before a tool runs."""
    data = journals["unfinished"].read_bytes()
    wrong: dict[int, str] = {}
    for size in range(1, len(data), 128):
        path = tmp_path / f"cut-{size}.db"
        path.write_bytes(data[:size])
        try:
            with SqliteJournal(path) as journal:
                load_driver("sync").run_blocking(FLOW, journal=journal, run_id="r", resume=True)
            wrong[size] = "resumed"
        except CorruptJournalError as exc:
            if str(path) not in str(exc):
                wrong[size] = f"the message does not name the file: {exc}"
        path.unlink()
    assert wrong == {}, f"of {len(data)} bytes"
    assert calls == []


# ---- corrupt --------------------------------------------------------------------------------------


def entry_payload(path: Path, seq: int) -> tuple[bytes, bytes]:
    """Entry ``seq``'s pickled completions and command digest, as stored in the file."""
    with sqlite3.connect(path) as db:
        blob, issued = db.execute("SELECT completions, issued FROM entries WHERE seq = ?", (seq,)).fetchone()
    db.close()
    return blob, issued.encode()


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["finished", "unfinished"])
def test_a_flipped_byte_in_an_entrys_completions_fails_its_checksum(
    kind: str, journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, kind, tmp_path)
    blob, _ = entry_payload(path, 12)
    at = path.read_bytes().index(blob)
    flip(path, at + len(blob) // 2, 0x01)
    assert refused(path, CorruptJournalError, calls) == f"{path}: run 'r', entry 12 fails its checksum"


def test_a_changed_command_digest_fails_its_checksum(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, "unfinished", tmp_path)
    _, issued = entry_payload(path, 7)
    assert issued == b'["s07@1 inc"]'
    flip(path, path.read_bytes().index(issued) + 4, 0x01)  # s07 -> s17: still text, still a command
    assert refused(path, CorruptJournalError, calls) == f"{path}: run 'r', entry 7 fails its checksum"


@pytest.mark.parametrize("row", ["a middle entry", "the last entry"])
def test_a_damaged_key_cannot_hide_entries(
    row: str, journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    """A bit flipped in an entry's run id takes it out of its run (and, in the middle of the run, the
    entries after it from the run's key range): caught, not resumed from the entries before it."""
    path = copy(journals, "unfinished", tmp_path)
    with SqliteJournal(path) as journal:
        last = len(journal.load("r").entries) - 1
    seq = 10 if row == "a middle entry" else last
    _, issued = entry_payload(path, seq)
    at = path.read_bytes().index(issued)  # the cell holds: run id, seq (one byte here), the digest
    flip(path, at - 2, 0x01)  # "r" -> "s"
    assert "damaged" in refused(path, CorruptJournalError, calls)


def test_a_damaged_btree_page_is_caught_by_sqlite(journals: dict[str, Path], tmp_path: Path, calls: list[str]) -> None:
    path = copy(journals, "finished", tmp_path)
    blob, _ = entry_payload(path, 20)
    page = path.read_bytes().index(blob) // 4096 * 4096
    data = bytearray(path.read_bytes())
    data[page : page + 12] = b"\xff" * 12  # the page's b-tree header: type, free blocks, cell count...
    path.write_bytes(bytes(data))
    assert "damaged" in refused(path, CorruptJournalError, calls)


def test_an_overwritten_header_page_is_damaged(journals: dict[str, Path], tmp_path: Path, calls: list[str]) -> None:
    path = copy(journals, "finished", tmp_path)
    data = bytearray(path.read_bytes())
    data[16:4096] = bytes(range(256)) * 15 + bytes(range(256))[:240]  # SQLite's magic kept, the rest garbage
    path.write_bytes(bytes(data))
    assert "damaged" in refused(path, CorruptJournalError, calls)


def test_a_header_page_overwritten_magic_and_all_looks_foreign(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    """Without SQLite's magic there is no telling a damaged journal from another file: refused all the same."""
    path = copy(journals, "finished", tmp_path)
    data = bytearray(path.read_bytes())
    data[:4096] = b"\x00garbage" * 512
    path.write_bytes(bytes(data))
    assert "not a flowkernel journal" in refused(path, ForeignJournalError, calls)


# ---- foreign --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"run r: 40 steps, all done\n", id="text"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), id="png"),
        pytest.param(b"SQLite format 2\x00" + bytes(1000), id="almost SQLite"),
    ],
)
def test_a_file_that_is_not_sqlite_is_foreign(content: bytes, tmp_path: Path, calls: list[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    message = refused(path, ForeignJournalError, calls)
    assert message == f"{path} is not a flowkernel journal (not a SQLite database)"
    assert path.read_bytes() == content  # left as it was


def test_another_applications_database_is_foreign_and_left_as_it_was(tmp_path: Path, calls: list[str]) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'ada')")
    db.close()
    before = path.read_bytes()
    message = refused(path, ForeignJournalError, calls)
    assert message == f"{path} is a SQLite database but not a flowkernel journal (it has tables ['users'])"
    assert path.read_bytes() == before  # not even switched to WAL mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("version", "3", "is a flowkernel journal of format version '3'; this flowkernel reads versions 2, 1"),
        ("format", "someone else's journal", 'is not a flowkernel journal (format "someone else\'s journal")'),
    ],
)
def test_a_journal_of_another_format_is_foreign(
    key: str, value: str, expected: str, journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, "finished", tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE flowkernel_journal SET value = ? WHERE key = ?", (value, key))
    db.close()
    with pytest.raises(ForeignJournalError) as refusal:
        SqliteJournal(path)
    assert str(refusal.value) == f"{path} {expected}"
    assert calls == []


def test_an_empty_file_is_a_new_journal(tmp_path: Path, calls: list[str]) -> None:
    path = tmp_path / "journal.db"
    path.touch()
    with SqliteJournal(path) as journal:
        result = load_driver("sync").run_blocking(FLOW, {"start": 0}, journal=journal, run_id="r")
        assert replay(FLOW, journal, "r") == result
    assert len(calls) == STEPS


def test_a_directory_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=re.escape(str(tmp_path))):
        SqliteJournal(tmp_path)


# ---- missing entries, unknown runs ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["finished", "unfinished"])
@pytest.mark.parametrize("seq", [0, 10, 20])
def test_a_deleted_entry_is_missing(
    seq: int, kind: str, journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, kind, tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = ?", (seq,))
    db.close()
    expected = f"{path}: run 'r', entry {seq} is missing (the next entry found is {seq + 1})"
    assert refused(path, CorruptJournalError, calls) == expected


def test_a_finished_run_whose_last_entry_is_deleted_is_not_run_again(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, "finished", tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = ?", (STEPS - 1,))
    db.close()
    message = refused(path, CorruptJournalError, calls)
    assert message == f"{path}: run 'r' has a result, but its record ends before the run does: entries are missing"


def test_an_unfinished_run_whose_last_entry_is_deleted_resumes_as_after_a_crash_before_it(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    """Losing the tail of an unfinished run is what a crash before its last write looks like: only the
    call whose entry was lost runs again (the durability setting says when that can happen)."""
    path = copy(journals, "unfinished", tmp_path)
    with SqliteJournal(path) as journal:
        recorded = len(journal.load("r").entries)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = ?", (recorded - 1,))
    db.close()
    with SqliteJournal(path) as journal:
        result = load_driver("sync").run_blocking(FLOW, journal=journal, run_id="r", resume=True)
    assert result.outputs == {f"s{STEPS - 1}": STEPS}
    assert calls == [f"inc({k})" for k in range(recorded - 1, STEPS)]


def test_a_run_that_does_not_exist_is_not_found(journals: dict[str, Path], tmp_path: Path, calls: list[str]) -> None:
    path = copy(journals, "finished", tmp_path)
    message = refused(path, RunNotFoundError, calls, run_id="nope")
    assert message == (
        f"{path} holds no run 'nope' (see: flowkernel runs {path});"
        " to start it if it is not there, pass its inputs with resume=True (start or resume)"
    )


# ---- values that cannot be recorded ---------------------------------------------------------------

LOCK_ONCE: list[bool] = []


@tool
def make_lock(value: int) -> Any:
    """Returns a lock (which no codec stores) the first time, a plain value after that."""
    if not LOCK_ONCE:
        LOCK_ONCE.append(True)
        return threading.Lock()
    return value


@tool
def count(value: int) -> int:
    CALLS.append(f"count({value})")
    return value + 1


LOCK_FLOW = Flow(
    name="locks",
    steps=[
        Step(id="a", tool=count, arguments={"value": 1}),
        Step(id="b", tool=count, arguments={"value": 2}),
        Step(id="lock", tool=make_lock, arguments={"value": Ref("a")}),
        Step(id="c", tool=count, arguments={"value": Ref("lock")}),
    ],
)


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_a_value_that_cannot_be_recorded_stops_the_run_with_its_partial_result(
    driver: str, tmp_path: Path, calls: list[str]
) -> None:
    if driver not in installed_drivers():
        pytest.skip(f"the {driver} driver is not installed")
    LOCK_ONCE.clear()
    runner = load_driver(driver)
    with SqliteJournal(tmp_path / "journal.db") as journal:
        with pytest.raises(JournalWriteError) as stopped:
            runner.run_blocking(LOCK_FLOW, journal=journal, run_id="r", max_concurrency=1)
        assert re.fullmatch(
            r"run 'r': cannot record the completions of lock@1: UnstorableValueError: cannot store entry \d+"
            r" of run 'r': the value lock@1 returned: the journal's codec has no tag for a _thread.lock \(.*",
            str(stopped.value),
        )
        partial = partial_result(stopped.value)
        assert partial is not None
        assert partial.status == "cancelled"
        assert {s.id: str(s.status) for s in partial.steps if s.id != "lock"} == {
            "a": "succeeded",
            "b": "succeeded",
            "c": "cancelled",
        }
        # Write-ahead: nothing after the failed write was recorded; resuming runs only what is left.
        assert calls == ["count(1)", "count(2)"]
        result = runner.run_blocking(LOCK_FLOW, journal=journal, run_id="r", resume=True)
        assert calls == ["count(1)", "count(2)", "count(2)"]
        assert result.outputs == {"b": 3, "c": 3}
        assert replay(LOCK_FLOW, journal, "r") == result


# ---- damaged cells of the runs table -----------------------------------------------------------------


def set_cell(path: Path, column: str, value: Any) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE runs SET {column} = ?", (value,))
    db.close()


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("started", "garbage", "its start time is not a time ('garbage')"),
        ("finished", "garbage", "the end of run 'r' is damaged (a cell of the wrong type)"),
        ("finished", 12.5, "the end of run 'r' fails its checksum"),
        ("status", None, "the end of run 'r' fails its checksum (status None"),
        ("status", "succeeded ", "the end of run 'r' fails its checksum"),
        ("steps_done", "many", "the end of run 'r' is damaged (a cell of the wrong type)"),
    ],
)
def test_a_damaged_cell_of_a_runs_row_is_a_one_line_corrupt_journal_error_in_runs_and_show(
    column: str, value: Any, why: str, journals: dict[str, Path], tmp_path: Path
) -> None:
    path = copy(journals, "finished", tmp_path)
    set_cell(path, column, value)
    with SqliteJournal(path) as journal, pytest.raises(CorruptJournalError) as listed:
        journal.runs()
    assert why in str(listed.value)
    assert str(listed.value).startswith(f"{path}: ")
    for command in ("runs", "show"):
        result = CliRunner().invoke(cli, [command, str(path), *(["r"] if command == "show" else [])])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert why in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_run_whose_whole_end_was_cleared_resumes_from_its_record_calling_nothing(
    journals: dict[str, Path], tmp_path: Path, calls: list[str]
) -> None:
    path = copy(journals, "finished", tmp_path)
    for column in ("status", "finished", "steps_done", "end_crc"):  # no trace of the end left in the row
        set_cell(path, column, None)
    with SqliteJournal(path) as journal:
        assert [run.status for run in journal.runs()] == ["incomplete"]
        result = load_driver("sync").run_blocking(FLOW, journal=journal, run_id="r", resume=True)
        assert [run.status for run in journal.runs()] == ["succeeded"]
    assert result.status == "succeeded"
    assert calls == []  # the record holds every completion: replay finishes the run, no tool runs again
