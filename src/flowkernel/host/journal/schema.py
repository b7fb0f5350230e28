"""The SQLite journal's file format: its tables, its format versions, and opening a file (WAL mode, the
schema created or checked). Kept apart from the store (:mod:`.sqlite`), which calls these on its connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...errors import ForeignJournalError
from ..sqlite_files import immediate

__all__ = ("FORMAT", "PICKLE_VERSION", "VERSION", "check_or_create_schema", "tables")

FORMAT = "flowkernel journal"
VERSION = "2"
PICKLE_VERSION = "1"
"""Format version 1: the first journals, pickles only, without lease or end checksums."""
_VERSIONS = (VERSION, PICKLE_VERSION)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS flowkernel_journal (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs ("
    " run_id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, flow_version TEXT NOT NULL, flow_hash TEXT NOT NULL,"
    " header BLOB NOT NULL, header_crc INTEGER NOT NULL, started REAL NOT NULL,"
    " status TEXT, finished REAL, steps_done INTEGER, end_crc INTEGER, lease_holder TEXT, lease_expires REAL)",
    "CREATE TABLE IF NOT EXISTS entries ("
    " run_id TEXT NOT NULL, seq INTEGER NOT NULL, issued TEXT NOT NULL, completions BLOB NOT NULL,"
    " crc INTEGER NOT NULL, steps_done INTEGER NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID",
)
_LATER_COLUMNS = ("end_crc INTEGER", "lease_holder TEXT", "lease_expires REAL")
"""Columns version 1 files lack; added when such a file is opened ``trusted=True`` (it is then written)."""


def tables(db: sqlite3.Connection, path: Path) -> set[str]:
    """The file's tables; :class:`ForeignJournalError` if they are another application's."""
    found = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if found and "flowkernel_journal" not in found:
        raise ForeignJournalError(
            f"{path} is a SQLite database but not a flowkernel journal (it has tables {sorted(found)})"
        )
    return found


def check_or_create_schema(db: sqlite3.Connection, path: Path, codec: str, trusted: bool) -> tuple[str, str]:
    """Create the tables of an empty file (storing values with ``codec``), else check it is a journal
    this flowkernel reads; a version 1 file opened ``trusted`` gains the columns it lacks. Returns the
    file's format version and the codec it stores values with."""
    if not tables(db, path):
        with immediate(db):
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO flowkernel_journal VALUES ('format', ?), ('version', ?), ('codec', ?)",
                (FORMAT, VERSION, codec),
            )
    meta = dict(db.execute("SELECT key, value FROM flowkernel_journal").fetchall())
    if meta.get("format") != FORMAT:
        raise ForeignJournalError(f"{path} is not a flowkernel journal (format {meta.get('format')!r})")
    version = meta.get("version")
    if version not in _VERSIONS:
        raise ForeignJournalError(
            f"{path} is a flowkernel journal of format version {version!r};"
            f" this flowkernel reads versions {', '.join(_VERSIONS)}"
        )
    codec_name = "pickle" if version == PICKLE_VERSION else str(meta.get("codec"))
    if codec_name not in ("json", "pickle"):
        raise ForeignJournalError(f"{path} stores values with an unknown codec ({codec_name!r})")
    if version == PICKLE_VERSION and trusted:  # trusted: it may be written, so give it leases
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        for column in _LATER_COLUMNS:
            if column.split()[0] not in columns:
                db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    return version, codec_name
