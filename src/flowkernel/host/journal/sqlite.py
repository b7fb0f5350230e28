"""The embedded default journal: one SQLite file in WAL mode, any number of runs, any number of writers.

Each batch of completions is one row, inserted and committed on its own (write-ahead: the kernel only
consumes a batch once its row is committed), so recording costs the same at step 10 and at step 100,000.
Rows carry a CRC32 of their payload and consecutive sequence numbers; loading checks both, and the file
itself, so a damaged journal is reported instead of being partly replayed.

Values are stored as tagged JSON (:mod:`.codec`), which cannot run code when read: a journal from
anywhere can be listed, shown and resumed. Pickles (any value, but reading one can run any code) only
when the journal is opened ``trusted=True``: with ``codec="pickle"`` for a new file, and to read
journals an older flowkernel wrote (format version 1, always pickles).

A run being executed holds a **lease** on its row (holder, expiry; :mod:`.leases`), renewed in the
background while it runs and released when it ends; a second process that tries to resume it gets
:class:`RunLeasedError` at once. A lease whose holder died is taken over: at once when the holder was a
process on this host that no longer exists, else once it expires (``lease`` seconds after its last renewal).
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ...errors import CorruptJournalError, JournalError, RunExistsError
from ...result import ExecutionResult
from ..sqlite_files import immediate, use_wal
from .base import Entry, Journal, RecordedRun, RunHeader, RunSummary
from .codec import JsonCodec, Where, describe
from .errors import RunLeasedError, UnstorableValueError, UntrustedJournalError
from .integrity import (
    check_no_orphans,
    check_whole_pages,
    checked_end,
    checked_entry,
    checked_header,
    end_crc,
    header_crc,
    not_a_database,
)
from .leases import (
    new_holder,
    no_run,
    refuse_if_leased,
    release_lease,
    renew_leases,
    start_renewing,
    take_lease,
)
from .schema import PICKLE_VERSION, check_or_create_schema, tables

__all__ = ("Codec", "Durability", "SqliteJournal")

Durability = Literal["process", "power"]
"""``process`` (the default): a committed entry survives the process being killed at any moment, and
the file is never corrupted; an OS crash or power failure can lose the most recent entries (SQLite
``synchronous=NORMAL`` in WAL mode), whose calls then run again on resume. ``power``: every entry is
flushed to the disk before the kernel sees it (``synchronous=FULL``): nothing committed is lost even on
power failure, at the price of one disk flush per batch."""

Codec = Literal["json", "pickle"]
"""How a new journal file stores values: ``json`` (the default; tagged JSON, cannot run code when read)
or ``pickle`` (any picklable value; reading it can run any code, so it needs ``trusted=True``)."""

_DAMAGE = ("malformed", "corrupt", "Could not decode", "no such table", "no such column")
"""Parts of SQLite's messages that mean the file is damaged (text or schema overwritten)."""


class SqliteJournal(Journal):
    """A journal in the SQLite file ``path`` (created if missing). Safe to share between threads and
    runs of one process, and between processes (SQLite's locking; ``timeout`` bounds the wait).

    ``trusted=True`` allows pickles: reading a journal that stores them (``codec="pickle"``, or a
    journal of format version 1) can run any code the file holds, so pass it only for files you wrote.
    ``models``: pydantic models and enums values may be, besides those the flows declare (the JSON codec
    rebuilds only classes it was told of). ``lease``: seconds a run's lease lasts without renewal (the
    holder renews it every third of that while it runs)."""

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        durability: Durability = "process",
        timeout: float = 30.0,
        trusted: bool = False,
        codec: Codec = "json",
        models: Iterable[type] = (),
        lease: float = 30.0,
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', got {durability!r}")
        if codec not in ("json", "pickle"):
            raise ValueError(f"codec must be 'json' or 'pickle', got {codec!r}")
        if codec == "pickle" and not trusted:
            raise ValueError("codec='pickle' needs trusted=True: reading a pickle can run any code")
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        self.path = Path(path)
        self.durability = durability
        self.trusted = trusted
        self.lease = lease
        self.codec = JsonCodec(models)
        self._lock = threading.Lock()
        self._holder = new_holder()
        self._leases: dict[str, str] = {}  # run id -> this journal's holder token for it
        self._renewer: threading.Thread | None = None
        self._closed = threading.Event()
        # The file is not read here before SQLite opens it: closing a descriptor of a file drops every POSIX
        # lock the process holds on it, those of other connections to it included, and SQLite's locking
        # against other processes would silently stop working. SQLite tells a file that is not a database,
        # except a file of one byte, which it takes for an empty database (and would write over).
        with suppress(OSError):
            if self.path.stat().st_size == 1:
                raise not_a_database(self.path, "file is not a database", "open")
        with self._errors("open"):
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            try:
                # The tables before switching to WAL, which would change another application's database;
                # whole pages before anything is written: a write can make a cut file whole again.
                tables(self._db, self.path)
                check_whole_pages(self._db, self.path)
                use_wal(self._db, timeout)
                self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
                self._version, self._codec_name = check_or_create_schema(self._db, self.path, codec, trusted)
            except BaseException:
                self._db.close()
                raise

    @property
    def pickles(self) -> bool:
        """Whether this file stores pickles (it was created ``codec="pickle"``, or by an older flowkernel)."""
        return self._codec_name == "pickle"

    def allow(self, classes: Iterable[Any]) -> None:
        """Let the JSON codec store and rebuild these pydantic models and enums (and their fields')."""
        self.codec.allow(classes)

    # ---- values -------------------------------------------------------------------------------

    def _dumps(self, value: Any, where: Where) -> bytes:
        if not self.pickles:
            return self.codec.dumps(value, where)
        self._check_trusted()
        try:
            return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            message = " ".join(str(exc).split())
            raise UnstorableValueError(f"cannot store {describe(where)}: {type(exc).__name__}: {message}") from None

    def _loads(self, blob: bytes, what: str) -> Any:
        if not self.pickles:
            try:
                return self.codec.loads(blob, what)
            except CorruptJournalError as exc:
                raise CorruptJournalError(f"{self.path}: {exc}") from None
        self._check_trusted()
        try:
            return pickle.loads(blob)
        except Exception as exc:  # a value whose class cannot be imported here, or damaged bytes
            message = " ".join(str(exc).split())
            raise JournalError(f"{self.path}: cannot read {what}: {type(exc).__name__}: {message}") from exc

    def _check_trusted(self) -> None:
        if not self.trusted:
            raise UntrustedJournalError(
                f"{self.path} stores pickles (format version {self._version}, codec {self._codec_name!r}), and reading"
                " a pickle can run any code: open it with SqliteJournal(path, trusted=True) (CLI: --trusted) only if"
                " you trust where the file came from"
            )

    # ---- writing ------------------------------------------------------------------------------

    def begin(self, header: RunHeader) -> None:
        blob = self._dumps(header, f"the header of run {header.run_id!r} (its inputs)")
        started = time.time()
        holder = self._holder_for(header.run_id)
        with self._errors(f"record the start of run {header.run_id!r}"), self._lock:
            try:
                self._db.execute(
                    "INSERT INTO runs (run_id, flow_name, flow_version, flow_hash, header, header_crc, started,"
                    " lease_holder, lease_expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        header.run_id,
                        header.flow_name,
                        header.flow_version,
                        header.flow_hash,
                        blob,
                        header_crc(blob, started, self._version),
                        started,
                        holder,
                        started + self.lease,
                    ),
                )
            except sqlite3.IntegrityError:
                raise RunExistsError(
                    f"{self.path} already holds a run {header.run_id!r}: resume it, or start a run with another id"
                ) from None
            self._leases[header.run_id] = holder
        self._start_renewing()

    def append(self, run_id: str, entry: Entry, steps_done: int) -> None:
        # The text json.dumps(entry.issued) gives, built directly: a quarter of its cost on this hot path.
        issued = "[" + ", ".join(map(encode_basestring_ascii, entry.issued)) + "]"
        blob = self._dumps(entry.completions, ("", "entry {} of run {!r}", entry.seq, run_id))
        crc = zlib.crc32(blob, zlib.crc32(issued.encode()))
        holder = self._leases.get(run_id)
        with self._lock:
            if holder is None:  # not leased by this journal (a copy being written, a test): no fence
                self._db.execute(
                    "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", (run_id, entry.seq, issued, blob, crc, steps_done)
                )
                return
            # Fenced: written only while this journal still holds the run's lease, so a holder that was
            # paused past its lease (and taken over) cannot write beside the new one.
            cursor = self._db.execute(
                "INSERT INTO entries SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM runs WHERE run_id = ? AND lease_holder = ?)",
                (run_id, entry.seq, issued, blob, crc, steps_done, run_id, holder),
            )
        if cursor.rowcount != 1:
            self._leases.pop(run_id, None)
            raise RunLeasedError(f"{self.path}: run {run_id!r} lost its lease: another process took it over")

    def finish(self, run_id: str, result: ExecutionResult) -> None:
        done = sum(step.status == "succeeded" for step in result.steps)
        status, finished = str(result.status), time.time()
        with self._errors(f"record the end of run {run_id!r}"), self._lock:
            self._db.execute(
                "UPDATE runs SET status = ?, finished = ?, steps_done = ?, end_crc = ?,"
                " lease_holder = NULL, lease_expires = NULL WHERE run_id = ?",
                (status, finished, done, end_crc(status, finished, done), run_id),
            )
            self._leases.pop(run_id, None)

    # ---- leases -------------------------------------------------------------------------------

    def acquire(self, run_id: str) -> None:
        """Lease run ``run_id`` for this journal (to resume it): :class:`RunLeasedError` if a live holder
        has it; a dead holder's lease is taken over. Renewed in the background until :meth:`release`."""
        if self.pickles:  # a file of format version 1 has no leases until a trusted opening adds them
            self._check_trusted()
        holder = self._holder_for(run_id)
        with self._errors(f"lease run {run_id!r}"), self._lock:
            take_lease(self._db, self.path, run_id, holder, self.lease)
            self._leases[run_id] = holder
        self._start_renewing()

    def release(self, run_id: str) -> None:
        """Give up this journal's lease on run ``run_id`` (nothing if it holds none)."""
        holder = self._leases.pop(run_id, None)
        if holder is None:
            return
        with suppress(JournalError), self._errors(f"release run {run_id!r}"), self._lock:
            release_lease(self._db, run_id, holder)

    def _holder_for(self, run_id: str) -> str:
        return f"{self._holder}:{run_id}"

    def _start_renewing(self) -> None:
        with self._lock:
            if self._renewer is None:
                self._renewer = start_renewing(self._renew, self._closed, self.lease / 3)

    def _renew(self) -> None:
        """Push back the expiry of every lease this journal holds."""
        if not self._leases:
            return
        with self._lock:
            renew_leases(self._db, self._leases, self.lease)

    # ---- retrying ----------------------------------------------------------------------------

    def reopen(self, run_id: str, mark: str) -> bool:
        """Append the marker entry ``mark`` to a finished run that did not succeed and clear its end, so
        resuming it retries what did not succeed (see :mod:`.retry`). ``False``, changing nothing, if the
        run succeeded or has not finished; :class:`RunLeasedError` if it is being executed elsewhere."""
        with self._errors(f"reopen run {run_id!r}"), self._lock, immediate(self._db):
            row = self._db.execute(
                f"SELECT r.lease_holder, r.lease_expires, {self._end_columns} FROM runs r WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise no_run(self.path, run_id)
            current, expires, *end = row
            status, _, done = checked_end(self.path, self._version, run_id, *end)
            refuse_if_leased(self.path, run_id, current, expires, self._leases.values(), "")
            if status is None or status == "succeeded":
                return False
            (last,) = self._db.execute("SELECT MAX(seq) FROM entries WHERE run_id = ?", (run_id,)).fetchone()
            issued = "[" + encode_basestring_ascii(mark) + "]"
            blob = self._dumps((), f"the retry marker of run {run_id!r}")
            seq = 0 if last is None else last + 1
            crc = zlib.crc32(blob, zlib.crc32(issued.encode()))
            self._db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", (run_id, seq, issued, blob, crc, done or 0)
            )
            self._db.execute(
                "UPDATE runs SET status = NULL, finished = NULL, steps_done = NULL, end_crc = NULL WHERE run_id = ?",
                (run_id,),
            )
        return True

    # ---- deleting -----------------------------------------------------------------------------

    def delete(self, run_id: str) -> None:
        """Delete run ``run_id`` and its record, so its id can be used again; refused with
        :class:`RunLeasedError` while the run is being executed."""
        with self._errors(f"delete run {run_id!r}"), self._lock:
            with immediate(self._db):
                row = self._db.execute(
                    "SELECT lease_holder, lease_expires FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if row is None:
                    raise no_run(self.path, run_id)
                current, expires = row
                refuse_if_leased(
                    self.path, run_id, current, expires, self._leases.values(), ": it cannot be deleted now"
                )
                self._db.execute("DELETE FROM entries WHERE run_id = ?", (run_id,))
                self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            self._leases.pop(run_id, None)

    # ---- reading ------------------------------------------------------------------------------

    def load(self, run_id: str) -> RecordedRun:
        with self._errors(f"read run {run_id!r}"), self._lock:
            # integrity_check, not quick_check: it also finds keys out of order, which would hide entries
            problems = [row[0] for row in self._db.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise CorruptJournalError(
                    f"{self.path} is damaged: {'; '.join(' '.join(p.split()) for p in problems[:5])}"
                )
            check_whole_pages(self._db, self.path)
            check_no_orphans(self._db, self.path)
            row = self._db.execute(
                f"SELECT header, header_crc, started, {self._end_columns} FROM runs r WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise no_run(self.path, run_id)
            rows = self._db.execute(
                "SELECT seq, issued, completions, crc FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        header = checked_header(self.path, self._version, self._loads, run_id, *row[:3])
        status = checked_end(self.path, self._version, run_id, *row[3:])[0]
        entries = tuple(
            checked_entry(self.path, self._loads, run_id, position, *entry) for position, entry in enumerate(rows)
        )
        return RecordedRun(header, entries, status)

    def header(self, run_id: str) -> RunHeader:
        row = self._row("header, header_crc, started", run_id)
        return checked_header(self.path, self._version, self._loads, run_id, *row)

    def _row(self, columns: str, run_id: str) -> tuple[Any, ...]:
        """Some columns of a run's row in ``runs``; :class:`RunNotFoundError` if there is none."""
        with self._errors(f"read run {run_id!r}"), self._lock:
            row: tuple[Any, ...] | None = self._db.execute(
                f"SELECT {columns} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise no_run(self.path, run_id)
        return row

    @property
    def _end_columns(self) -> str:
        end = "r.end_crc" if self._version != PICKLE_VERSION else "NULL"
        return f"r.status, r.finished, r.steps_done, {end}"

    def runs(self) -> list[RunSummary]:
        with self._errors("list runs"), self._lock:
            rows = self._db.execute(
                f"SELECT r.run_id, r.flow_name, r.flow_version, r.started, {self._end_columns},"
                " e.seq, e.steps_done FROM runs r LEFT JOIN entries e ON e.run_id = r.run_id AND e.seq ="
                " (SELECT MAX(seq) FROM entries WHERE run_id = r.run_id) ORDER BY r.started, r.run_id"
            ).fetchall()
        summaries = []
        for run_id, name, version, started, status, finished, done, crc, last_seq, last_done in rows:
            where = f"{self.path}: run {run_id!r}"
            if not all(type(text) is str for text in (run_id, name, version)):
                raise CorruptJournalError(f"{where} is damaged: its name or version is not text")
            if type(started) is not float:
                raise CorruptJournalError(f"{where} is damaged: its start time is not a time ({started!r})")
            status, finished, done = checked_end(self.path, self._version, run_id, status, finished, done, crc)
            if not (last_seq is None or type(last_seq) is int) or not (last_done is None or type(last_done) is int):
                raise CorruptJournalError(f"{where} is damaged: its last entry's numbers are not numbers")
            summaries.append(
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
            )
        return summaries

    def close(self) -> None:
        self._closed.set()
        for run_id in list(self._leases):
            self.release(run_id)
        with self._lock:
            self._db.close()

    # ---- errors -------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SQLite's errors as journal errors that say which file and what was being done."""
        try:
            yield
        except UnicodeDecodeError as exc:  # SQLite's message quoted damaged text
            raise CorruptJournalError(f"{self.path} is damaged (unreadable text) while trying to {action}") from exc
        except sqlite3.DatabaseError as exc:
            message = " ".join(str(exc).split())  # one line: SQLite's messages can span several
            if "not a database" in message:
                raise not_a_database(self.path, message, action) from exc
            if any(sign in message for sign in _DAMAGE):
                raise CorruptJournalError(f"{self.path} is damaged ({message}) while trying to {action}") from exc
            raise JournalError(f"{self.path}: cannot {action}: {message}") from exc
