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
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
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
_DAMAGE = ("malformed", "corrupt", "Could not decode", "no such table", "no such column")
"""Parts of SQLite's messages that mean the file is damaged (text or schema overwritten)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS flowkernel_journal (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs ("
    " run_id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, flow_version TEXT NOT NULL, flow_hash TEXT NOT NULL,"
    " header BLOB NOT NULL, header_crc INTEGER NOT NULL, started REAL NOT NULL,"
    " status TEXT, finished REAL, steps_done INTEGER)",
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
        self._lock = threading.Lock()
        # The file is not read here before SQLite opens it: closing a descriptor of a file drops every POSIX
        # lock the process holds on it, those of other connections to it included, and SQLite's locking
        # against other processes would silently stop working. SQLite tells a file that is not a database,
        # except a file of one byte, which it takes for an empty database (and would write over).
        with suppress(OSError):
            if self.path.stat().st_size == 1:
                raise _not_a_database(self.path, "file is not a database", "open")
        with self._errors("open"):
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            try:
                self._tables()  # before switching to WAL, which would change another application's database
                self._use_wal(timeout)
                self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
                self._check_or_create_schema()
            except BaseException:
                self._db.close()
                raise

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
        # The text json.dumps(entry.issued) gives, built directly: a quarter of its cost on this hot path.
        issued = "[" + ", ".join(map(encode_basestring_ascii, entry.issued)) + "]"
        blob = pickle.dumps(entry.completions, pickle.HIGHEST_PROTOCOL)
        crc = zlib.crc32(blob, zlib.crc32(issued.encode()))
        with self._lock:
            self._db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", (run_id, entry.seq, issued, blob, crc, steps_done)
            )

    def finish(self, run_id: str, result: ExecutionResult) -> None:
        done = sum(step.status == "succeeded" for step in result.steps)
        with self._errors(f"record the end of run {run_id!r}"), self._lock:
            self._db.execute(
                "UPDATE runs SET status = ?, finished = ?, steps_done = ? WHERE run_id = ?",
                (str(result.status), time.time(), done, run_id),
            )

    # ---- reading ------------------------------------------------------------------------------

    def load(self, run_id: str) -> RecordedRun:
        with self._errors(f"read run {run_id!r}"), self._lock:
            # integrity_check, not quick_check: it also finds keys out of order, which would hide entries
            problems = [row[0] for row in self._db.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise CorruptJournalError(f"{self.path} is damaged: {'; '.join(problems[:5])}")
            self._check_whole_pages()
            self._check_no_orphans()
            row = self._db.execute("SELECT header, header_crc, status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(f"{self.path} holds no run {run_id!r} (see: flowkernel runs {self.path})")
            rows = self._db.execute(
                "SELECT seq, issued, completions, crc FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        header = self._header(run_id, row[0], row[1])
        entries = tuple(self._entry(run_id, position, *entry) for position, entry in enumerate(rows))
        return RecordedRun(header, entries, row[2])

    def header(self, run_id: str) -> RunHeader:
        row = self._row("header, header_crc", run_id)
        return self._header(run_id, row[0], row[1])

    def _row(self, columns: str, run_id: str) -> tuple[Any, ...]:
        """Some columns of a run's row in ``runs``; :class:`RunNotFoundError` if there is none."""
        with self._errors(f"read run {run_id!r}"), self._lock:
            row: tuple[Any, ...] | None = self._db.execute(
                f"SELECT {columns} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise RunNotFoundError(f"{self.path} holds no run {run_id!r} (see: flowkernel runs {self.path})")
        return row

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

    def _use_wal(self, timeout: float) -> None:
        """Switch the file to WAL mode (once for good), retrying while another connection is reading it:
        SQLite refuses the switch at once then, without waiting for the busy timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.002)

    def _tables(self) -> set[str]:
        """The file's tables; :class:`ForeignJournalError` if they are another application's."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "flowkernel_journal" not in tables:
            raise ForeignJournalError(
                f"{self.path} is a SQLite database but not a flowkernel journal (it has tables {sorted(tables)})"
            )
        return tables

    def _check_or_create_schema(self) -> None:
        if not self._tables():
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

    def _check_whole_pages(self) -> None:
        """A SQLite file is whole pages: one cut inside a page is damaged even where the bytes lost held
        nothing SQLite would notice (the unused end of the last page)."""
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:  # an in-memory journal (":memory:")
            return
        if size % page_size:
            raise CorruptJournalError(
                f"{self.path} is damaged: it is cut inside a page ({size} bytes, pages of {page_size})"
            )

    def _check_no_orphans(self) -> None:
        """Every run id in ``entries`` is a run: a damaged key would otherwise hide its entry (and, sorted
        last, pass the integrity check), and the run would silently resume from before it."""
        runs = {row[0] for row in self._db.execute("SELECT run_id FROM runs")}
        found = self._db.execute("SELECT run_id FROM entries ORDER BY run_id LIMIT 1").fetchone()
        while found is not None:  # one seek per distinct run id, not a scan of every entry
            if found[0] not in runs:
                raise CorruptJournalError(f"{self.path} is damaged: it holds entries of no run ({found[0]!r})")
            found = self._db.execute(
                "SELECT run_id FROM entries WHERE run_id > ? ORDER BY run_id LIMIT 1", found
            ).fetchone()

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
        except UnicodeDecodeError as exc:  # SQLite's message quoted damaged text
            raise CorruptJournalError(f"{self.path} is damaged (unreadable text) while trying to {action}") from exc
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "not a database" in message:
                raise _not_a_database(self.path, message, action) from exc
            if any(sign in message for sign in _DAMAGE):
                raise CorruptJournalError(f"{self.path} is damaged ({message}) while trying to {action}") from exc
            raise JournalError(f"{self.path}: cannot {action}: {message}") from exc


def _not_a_database(path: Path, message: str, action: str) -> JournalError:
    """What SQLite's "file is not a database" means for ``path``: damaged if it starts like SQLite, else
    foreign. (Reading the file cannot drop locks that matter: SQLite cannot read it.)"""
    try:
        with path.open("rb") as file:
            magic = file.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        return JournalError(f"{path}: cannot {action}: {message} ({exc})")
    if magic == _SQLITE_MAGIC:
        return CorruptJournalError(f"{path} is damaged ({message}) while trying to {action}")
    if magic and _SQLITE_MAGIC.startswith(magic):
        return CorruptJournalError(f"{path} is damaged: cut short to {len(magic)} bytes, inside SQLite's header")
    return ForeignJournalError(f"{path} is not a flowkernel journal (not a SQLite database)")
