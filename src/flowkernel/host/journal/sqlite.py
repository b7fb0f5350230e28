"""The embedded default journal: one SQLite file in WAL mode, any number of runs, any number of writers.

Each batch of completions is one row, inserted and committed on its own (write-ahead: the kernel only
consumes a batch once its row is committed), so recording costs the same at step 10 and at step 100,000.
Rows carry a CRC32 of their payload and consecutive sequence numbers; loading checks both, and the file
itself, so a damaged journal is reported instead of being partly replayed.

Values are pickled: results of any type come back exactly as the tool returned them. Open only
journals you (or your own runs) wrote, as with any pickle.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ...errors import CorruptJournalError, ForeignJournalError, JournalError, RunExistsError, RunNotFoundError
from ...protocol import Cancelled, Raised, Returned, TimerFired
from ...result import ExecutionResult
from .base import Entry, Journal, RecordedRun, RunHeader, RunSummary

__all__ = ("Durability", "SqliteJournal")

Durability = Literal["process", "power"]
"""``process`` (the default): a committed entry survives the process being killed at any moment, and
the file is never corrupted; an OS crash or power failure can lose the most recent entries (SQLite
``synchronous=NORMAL`` in WAL mode), whose calls then run again on resume. ``power``: every entry is
flushed to the disk before the kernel sees it (``synchronous=FULL``): nothing committed is lost even on
power failure, at the price of one disk flush per batch."""

FORMAT = "flowkernel journal"
VERSION = "1"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_COMPLETION_TYPES = (Returned, Raised, TimerFired, Cancelled)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS flowkernel_journal (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs ("
    " run_id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, flow_version TEXT NOT NULL, flow_hash TEXT NOT NULL,"
    " header BLOB NOT NULL, header_crc INTEGER NOT NULL, started REAL NOT NULL,"
    " status TEXT, finished REAL, steps_done INTEGER, result TEXT)",
    "CREATE TABLE IF NOT EXISTS entries ("
    " run_id TEXT NOT NULL, seq INTEGER NOT NULL, issued TEXT NOT NULL, completions BLOB NOT NULL,"
    " crc INTEGER NOT NULL, steps_done INTEGER NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID",
)


class SqliteJournal(Journal):
    """A journal in the SQLite file ``path`` (created if missing). Safe to share between threads and
    runs of one process, and between processes (SQLite's locking; ``timeout`` bounds the wait)."""

    def __init__(self, path: str | PathLike[str], *, durability: Durability = "process", timeout: float = 30.0) -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', got {durability!r}")
        self.path = Path(path)
        self.durability = durability
        _refuse_foreign_file(self.path)
        self._lock = threading.Lock()
        with self._errors("open"):
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
            self._check_or_create_schema()

    # ---- writing ------------------------------------------------------------------------------

    def begin(self, header: RunHeader) -> None:
        blob = pickle.dumps(header, pickle.HIGHEST_PROTOCOL)
        with self._errors(f"record the start of run {header.run_id!r}"), self._lock:
            try:
                self._db.execute(
                    "INSERT INTO runs (run_id, flow_name, flow_version, flow_hash, header, header_crc, started)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        header.run_id,
                        header.flow_name,
                        header.flow_version,
                        header.flow_hash,
                        blob,
                        zlib.crc32(blob),
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise RunExistsError(
                    f"{self.path} already holds a run {header.run_id!r}: resume it, or start a run with another id"
                ) from None

    def append(self, run_id: str, entry: Entry, steps_done: int) -> None:
        issued = json.dumps(entry.issued)
        blob = pickle.dumps(entry.completions, pickle.HIGHEST_PROTOCOL)
        crc = zlib.crc32(blob, zlib.crc32(issued.encode()))
        with self._lock:
            self._db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", (run_id, entry.seq, issued, blob, crc, steps_done)
            )

    def finish(self, run_id: str, result: ExecutionResult) -> None:
        done = sum(step.status == "succeeded" for step in result.steps)
        with self._errors(f"record the result of run {run_id!r}"), self._lock:
            self._db.execute(
                "UPDATE runs SET status = ?, finished = ?, steps_done = ?, result = ? WHERE run_id = ?",
                (str(result.status), time.time(), done, result.to_json(), run_id),
            )

    # ---- reading ------------------------------------------------------------------------------

    def load(self, run_id: str) -> RecordedRun:
        with self._errors(f"read run {run_id!r}"), self._lock:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise CorruptJournalError(f"{self.path} is damaged: {'; '.join(problems[:5])}")
            row = self._db.execute("SELECT header, header_crc, result FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"{self.path} holds no run {run_id!r} (see: flowkernel runs {self.path})")
            rows = self._db.execute(
                "SELECT seq, issued, completions, crc FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        header = self._header(run_id, row[0], row[1])
        entries = tuple(self._entry(run_id, position, *entry) for position, entry in enumerate(rows))
        result = ExecutionResult.from_json(row[2]) if row[2] is not None else None
        return RecordedRun(header, entries, result)

    def runs(self) -> list[RunSummary]:
        with self._errors("list runs"), self._lock:
            rows = self._db.execute(
                "SELECT r.run_id, r.flow_name, r.flow_version, r.status, r.started, r.finished, r.steps_done,"
                " e.seq, e.steps_done FROM runs r LEFT JOIN entries e ON e.run_id = r.run_id AND e.seq ="
                " (SELECT MAX(seq) FROM entries WHERE run_id = r.run_id) ORDER BY r.started, r.run_id"
            ).fetchall()
        return [
            RunSummary(
                run_id=run_id,
                flow_name=name,
                flow_version=version,
                status=status or "incomplete",
                started=datetime.fromtimestamp(started, UTC),
                finished=datetime.fromtimestamp(finished, UTC) if finished is not None else None,
                steps_done=done if done is not None else (last_done or 0),
                entries=0 if last_seq is None else last_seq + 1,
            )
            for run_id, name, version, status, started, finished, done, last_seq, last_done in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- checks -------------------------------------------------------------------------------

    def _check_or_create_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "flowkernel_journal" not in tables:
            raise ForeignJournalError(
                f"{self.path} is a SQLite database but not a flowkernel journal (it has tables {sorted(tables)})"
            )
        if not tables:
            self._db.execute("BEGIN IMMEDIATE")
            try:  # statement by statement: executescript would commit the transaction first
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT OR IGNORE INTO flowkernel_journal VALUES ('format', ?), ('version', ?)", (FORMAT, VERSION)
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        meta = dict(self._db.execute("SELECT key, value FROM flowkernel_journal").fetchall())
        if meta.get("format") != FORMAT:
            raise ForeignJournalError(f"{self.path} is not a flowkernel journal (format {meta.get('format')!r})")
        if meta.get("version") != VERSION:
            raise ForeignJournalError(
                f"{self.path} is a flowkernel journal of format version {meta.get('version')!r};"
                f" this flowkernel reads version {VERSION}"
            )

    def _header(self, run_id: str, blob: bytes, crc: int) -> RunHeader:
        if zlib.crc32(blob) != crc:
            raise CorruptJournalError(f"{self.path}: the header of run {run_id!r} fails its checksum")
        header = self._unpickle(blob, f"the header of run {run_id!r}")
        if not isinstance(header, RunHeader) or header.run_id != run_id:
            raise CorruptJournalError(f"{self.path}: the header of run {run_id!r} is not a run header")
        return header

    def _entry(self, run_id: str, position: int, seq: int, issued: str, blob: bytes, crc: int) -> Entry:
        where = f"{self.path}: run {run_id!r}, entry {position}"
        if seq != position:
            raise CorruptJournalError(f"{where} is missing (the next entry found is {seq})")
        if zlib.crc32(blob, zlib.crc32(issued.encode())) != crc:
            raise CorruptJournalError(f"{where} fails its checksum")
        completions = self._unpickle(blob, f"run {run_id!r}, entry {position}")
        try:
            commands = json.loads(issued)
        except ValueError:
            raise CorruptJournalError(f"{where}: its command digest is not readable") from None
        if not isinstance(completions, tuple) or not all(isinstance(c, _COMPLETION_TYPES) for c in completions):
            raise CorruptJournalError(f"{where} does not hold completions")
        return Entry(seq, tuple(commands), completions)

    def _unpickle(self, blob: bytes, what: str) -> Any:
        try:
            return pickle.loads(blob)
        except Exception as exc:  # a value whose class cannot be imported here, or damaged bytes
            raise JournalError(f"{self.path}: cannot read {what}: {type(exc).__name__}: {exc}") from exc

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SQLite's errors as journal errors that say which file and what was being done."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "not a database" in message:
                raise ForeignJournalError(f"{self.path} is not a flowkernel journal: {message}") from exc
            if "malformed" in message or "corrupt" in message:
                raise CorruptJournalError(f"{self.path} is damaged ({message}) while trying to {action}") from exc
            raise JournalError(f"{self.path}: cannot {action}: {message}") from exc


def _refuse_foreign_file(path: Path) -> None:
    """A file that exists and is not SQLite at all is refused before SQLite touches it."""
    try:
        with path.open("rb") as file:
            magic = file.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalError(f"cannot open journal {path}: {exc}") from exc
    if magic and magic != _SQLITE_MAGIC:
        raise ForeignJournalError(f"{path} is not a flowkernel journal (not a SQLite database)")
