"""Integrity checks of a SQLite journal file: whole pages, no orphan entries, each row's cell types and
checksums, and what "not a database" means, so a damaged journal is reported instead of being partly
replayed. Kept apart from the store (:mod:`.sqlite`), which calls these on what it reads.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import CorruptJournalError, ForeignJournalError, JournalError
from ...protocol import Cancelled, Raised, Returned, TimerFired
from .base import Entry, RunHeader
from .schema import PICKLE_VERSION

__all__ = (
    "check_no_orphans",
    "check_whole_pages",
    "checked_end",
    "checked_entry",
    "checked_header",
    "end_crc",
    "header_crc",
    "not_a_database",
)

Loads = Callable[[bytes, str], Any]
"""The store's reading of a value: its bytes, and what it is (for messages)."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_COMPLETION_TYPES = (Returned, Raised, TimerFired, Cancelled)


def check_whole_pages(db: sqlite3.Connection, path: Path) -> None:
    """A SQLite file is whole pages: one cut inside a page is damaged even where the bytes lost held
    nothing SQLite would notice (the unused end of the last page)."""
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    try:
        size = path.stat().st_size
    except FileNotFoundError:  # an in-memory journal (":memory:")
        return
    if size % page_size:
        raise CorruptJournalError(f"{path} is damaged: it is cut inside a page ({size} bytes, pages of {page_size})")


def check_no_orphans(db: sqlite3.Connection, path: Path) -> None:
    """Every run id in ``entries`` is a run: a damaged key would otherwise hide its entry (and, sorted
    last, pass the integrity check), and the run would silently resume from before it."""
    runs = {row[0] for row in db.execute("SELECT run_id FROM runs")}
    found = db.execute("SELECT run_id FROM entries ORDER BY run_id LIMIT 1").fetchone()
    while found is not None:  # one seek per distinct run id, not a scan of every entry
        if found[0] not in runs:
            raise CorruptJournalError(f"{path} is damaged: it holds entries of no run ({found[0]!r})")
        found = db.execute("SELECT run_id FROM entries WHERE run_id > ? ORDER BY run_id LIMIT 1", found).fetchone()


def header_crc(blob: bytes, started: float, version: str) -> int:
    """The header's checksum; from version 2 it covers the start time too."""
    if version == PICKLE_VERSION:
        return zlib.crc32(blob)
    return zlib.crc32(repr(started).encode(), zlib.crc32(blob))


def end_crc(status: str, finished: float, done: int) -> int:
    """The checksum of a run's end (status, when, steps done), written with its status from version 2."""
    return zlib.crc32(f"{status}\x00{finished!r}\x00{done}".encode())


def checked_header(path: Path, version: str, loads: Loads, run_id: str, blob: Any, crc: Any, started: Any) -> RunHeader:
    """Run ``run_id``'s header from its cells, checked: their types, its checksum, and that it is the
    header of that run."""
    if type(blob) is not bytes or type(crc) is not int or type(started) is not float:
        raise CorruptJournalError(f"{path}: the header of run {run_id!r} is damaged (a cell of the wrong type)")
    if header_crc(blob, started, version) != crc:
        raise CorruptJournalError(f"{path}: the header of run {run_id!r} fails its checksum")
    header = loads(blob, f"the header of run {run_id!r}")
    if not isinstance(header, RunHeader) or header.run_id != run_id:
        raise CorruptJournalError(f"{path}: the header of run {run_id!r} is not a run header")
    return header


def checked_end(
    path: Path, version: str, run_id: str, status: Any, finished: Any, done: Any, crc: Any
) -> tuple[str | None, float | None, int | None]:
    """A run's end (status, when, steps done), checked: its cells' types, and from version 2 their
    checksum, which is only written with a status, so a cleared status does not pass for a running run."""
    where = f"{path}: the end of run {run_id!r}"
    if not (status is None or type(status) is str) or not (finished is None or type(finished) is float):
        raise CorruptJournalError(f"{where} is damaged (a cell of the wrong type)")
    if not (done is None or type(done) is int):
        raise CorruptJournalError(f"{where} is damaged (a cell of the wrong type)")
    if version == PICKLE_VERSION:
        return status, finished, done
    if status is None and finished is None and done is None and crc is None:
        return None, None, None
    if status is None or finished is None or done is None or crc != end_crc(status, finished, done):
        raise CorruptJournalError(f"{where} fails its checksum (status {status!r}, finished {finished!r})")
    return status, finished, done


def checked_entry(
    path: Path, loads: Loads, run_id: str, position: int, seq: Any, issued: Any, blob: Any, crc: Any
) -> Entry:
    """Entry ``position`` of run ``run_id`` from its cells, checked: their types, that no entry is missing
    before it, its checksum, and that it holds a list of commands and completions."""
    where = f"{path}: run {run_id!r}, entry {position}"
    if type(seq) is not int or type(issued) is not str or type(blob) is not bytes or type(crc) is not int:
        raise CorruptJournalError(f"{where} is damaged (a cell of the wrong type)")
    if seq != position:
        raise CorruptJournalError(f"{where} is missing (the next entry found is {seq})")
    if zlib.crc32(blob, zlib.crc32(issued.encode())) != crc:
        raise CorruptJournalError(f"{where} fails its checksum")
    completions = loads(blob, f"run {run_id!r}, entry {position}")
    try:
        commands = json.loads(issued)
    except ValueError:
        raise CorruptJournalError(f"{where}: its command digest is not readable") from None
    if not isinstance(completions, tuple) or not all(isinstance(c, _COMPLETION_TYPES) for c in completions):
        raise CorruptJournalError(f"{where} does not hold completions")
    if not isinstance(commands, list) or not all(type(c) is str for c in commands):
        raise CorruptJournalError(f"{where}: its command digest is not a list of commands")
    return Entry(seq, tuple(commands), completions)


def not_a_database(path: Path, message: str, action: str) -> JournalError:
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
