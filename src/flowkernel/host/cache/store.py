"""The step cache's file: one SQLite database in WAL mode, shared by any number of runs and processes.

Each lookup and each store is one statement (an upsert stores), so concurrent writers never see half an
entry and the last writer of a key wins; a busy file is waited for (``timeout``). Values are JSON text,
never pickles: a cache file from anywhere can be read without running code, and a damaged or crafted
entry is a miss (logged), a damaged or foreign file a :class:`~flowkernel.errors.CacheError`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

from ...errors import CacheError, CorruptCacheError, ForeignCacheError
from ..sqlite_files import immediate, use_wal
from .keys import CacheKey

__all__ = ("CacheHit", "CacheStats", "StepCache", "ToolStats")

log = logging.getLogger("flowkernel.cache")

FORMAT = "flowkernel step cache"
VERSION = "1"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DAMAGE = ("malformed", "corrupt", "no such table", "no such column")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS flowkernel_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entries ("
    " digest TEXT PRIMARY KEY, tool TEXT NOT NULL, version TEXT NOT NULL, arguments TEXT NOT NULL,"
    " value TEXT NOT NULL, stored REAL NOT NULL, expires REAL, hits INTEGER NOT NULL DEFAULT 0, last_hit REAL"
    ") WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS entries_by_tool ON entries (tool)",
)
_UPSERT = (
    "INSERT INTO entries (digest, tool, version, arguments, value, stored, expires) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (digest) DO UPDATE SET tool = excluded.tool, version = excluded.version,"
    " arguments = excluded.arguments, value = excluded.value, stored = excluded.stored, expires = excluded.expires"
)


class CacheHit(NamedTuple):
    """A result found in the cache: the value, and when it was stored (seconds since the epoch)."""

    value: Any
    stored: float


class ToolStats(NamedTuple):
    """One tool's entries: how many, how many expired, how often they were served, their values' size."""

    tool: str
    entries: int
    expired: int
    hits: int
    value_bytes: int


class CacheStats(NamedTuple):
    """What a cache file holds: entries (of which expired), hits served, the file's size, per tool."""

    path: str
    entries: int
    expired: int
    hits: int
    file_bytes: int
    tools: tuple[ToolStats, ...]


class StepCache:
    """A step cache in the SQLite file ``path`` (created if missing). Give it to a run (``cache=``) to
    serve the calls of tools and steps with a :class:`~flowkernel.model.CachePolicy` from it.

    The file is opened and checked here, so a bad path fails before any run. Each thread (and each
    process: the object pickles as its path, for Dask workers) uses a connection of its own. ``clock``
    gives the wall-clock time (seconds since the epoch) that time-to-live is measured with.
    """

    def __init__(
        self, path: str | PathLike[str], *, timeout: float = 30.0, clock: Callable[[], float] = time.time
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.path = Path(path)
        self.timeout = timeout
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._checked_in = -1  # the process that checked the file (a fork checks again)
        self._connection()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout, "clock": self.clock}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.timeout, self.clock = state["path"], state["timeout"], state["clock"]
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections = []
        self._checked_in = -1

    def __repr__(self) -> str:
        return f"StepCache({str(self.path)!r})"

    def __enter__(self) -> StepCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- lookups and stores -----------------------------------------------------------------------

    def get(self, key: CacheKey) -> CacheHit | None:
        """The result stored under ``key`` if it has not expired (counted as a hit), else ``None``."""
        with self._errors("read it"):
            db = self._connection()
            row = db.execute(
                "SELECT tool, version, arguments, value, stored, expires FROM entries WHERE digest = ?", (key.digest,)
            ).fetchone()
            if row is None:
                return None
            tool, version, arguments, text, stored, expires = row
            now = self.clock()
            if (tool, version, arguments) != key[:3] or not isinstance(text, str) or not _number(stored):
                log.warning("step cache %s: entry %s does not match its key; ignored", self.path, key.digest[:12])
                return None
            if expires is not None and (not _number(expires) or expires <= now):
                return None
            try:
                value = json.loads(text, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                log.warning("step cache %s: entry %s is not JSON; ignored", self.path, key.digest[:12])
                return None
            db.execute("UPDATE entries SET hits = hits + 1, last_hit = ? WHERE digest = ?", (now, key.digest))
        return CacheHit(value, float(stored))

    def put(self, key: CacheKey, value_json: str, ttl: float | None) -> None:
        """Store ``value_json`` (JSON text) under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        now = self.clock()
        with self._errors("write it"):
            self._connection().execute(
                _UPSERT, (*key[3:], *key[:3], value_json, now, None if ttl is None else now + ttl)
            )

    # ---- inspecting and clearing ------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """Counts over the whole file, and per tool (by name)."""
        now = self.clock()
        with self._errors("read it"):
            rows = (
                self._connection()
                .execute(
                    "SELECT tool, COUNT(*), COALESCE(SUM(expires IS NOT NULL AND expires <= ?), 0),"
                    " COALESCE(SUM(hits), 0), COALESCE(SUM(LENGTH(CAST(value AS BLOB))), 0)"
                    " FROM entries GROUP BY tool ORDER BY tool",
                    (now,),
                )
                .fetchall()
            )
        tools = tuple(ToolStats(str(tool), int(n), int(old), int(hits), int(size)) for tool, n, old, hits, size in rows)
        size = sum(self.path.with_name(self.path.name + suffix).stat().st_size for suffix in _files(self.path))
        return CacheStats(
            str(self.path),
            sum(t.entries for t in tools),
            sum(t.expired for t in tools),
            sum(t.hits for t in tools),
            size,
            tools,
        )

    def clear(self, *, tool: str | None = None, expired: bool = False) -> int:
        """Delete entries: all, or those of ``tool``, or (``expired=True``) only expired ones; how many."""
        conditions: list[str] = []
        parameters: list[str | float] = []
        if tool is not None:
            conditions.append("tool = ?")
            parameters.append(tool)
        if expired:
            conditions.append("expires IS NOT NULL AND expires <= ?")
            parameters.append(self.clock())
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._errors("clear it"):
            return int(self._connection().execute(f"DELETE FROM entries{where}", parameters).rowcount)

    def close(self) -> None:
        """Close every connection this object opened in this process (it opens new ones if used again)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for db in connections:
            with suppress(sqlite3.Error):
                db.close()

    # ---- the file -------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the file checked, once per process) on first use."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            return db
        with self._errors("open it"):
            with suppress(OSError):  # SQLite takes a file of one byte for an empty database
                if self.path.stat().st_size == 1:
                    raise ForeignCacheError(f"{self.path} is not a flowkernel step cache (not a SQLite database)")
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            try:
                if self._checked_in != os.getpid():
                    self._check_or_create(db)
                    self._checked_in = os.getpid()
                db.execute("PRAGMA synchronous=NORMAL")  # per connection; in WAL mode a crash loses no commit
            except BaseException:
                db.close()
                raise
        with self._lock:
            self._connections.append(db)
        self._local.db, self._local.pid = db, os.getpid()
        return db

    def _check_or_create(self, db: sqlite3.Connection) -> None:
        tables = _tables(db)
        if tables and "flowkernel_cache" not in tables:
            raise ForeignCacheError(
                f"{self.path} is a SQLite database but not a flowkernel step cache (it has tables {sorted(tables)})"
            )
        use_wal(db, self.timeout)
        if not tables:
            with immediate(db):
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(
                    "INSERT OR IGNORE INTO flowkernel_cache VALUES ('format', ?), ('version', ?)", (FORMAT, VERSION)
                )
        meta = dict(db.execute("SELECT key, value FROM flowkernel_cache").fetchall())
        if meta.get("format") != FORMAT:
            raise ForeignCacheError(f"{self.path} is not a flowkernel step cache (format {meta.get('format')!r})")
        if meta.get("version") != VERSION:
            raise ForeignCacheError(
                f"{self.path} is a flowkernel step cache of format version {meta.get('version')!r};"
                f" this flowkernel reads version {VERSION}"
            )
        columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
        missing = {"digest", "tool", "version", "arguments", "value", "stored", "expires", "hits", "last_hit"} - columns
        if missing:
            raise CorruptCacheError(f"{self.path} is damaged: its entries lack the columns {sorted(missing)}")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SQLite's errors as cache errors that say which file and what was being done."""
        try:
            yield
        except UnicodeDecodeError as exc:
            raise CorruptCacheError(f"step cache {self.path} is damaged (unreadable text): cannot {action}") from exc
        except sqlite3.DatabaseError as exc:
            message = " ".join(str(exc).split())
            if "not a database" in message:
                raise self._not_a_database(message) from exc
            if any(sign in message for sign in _DAMAGE):
                raise CorruptCacheError(f"step cache {self.path} is damaged ({message}): cannot {action}") from exc
            raise CacheError(f"step cache {self.path}: cannot {action}: {message}") from exc

    def _not_a_database(self, message: str) -> CacheError:
        try:
            with self.path.open("rb") as file:
                magic = file.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            return CacheError(f"step cache {self.path}: {message} ({exc})")
        if magic == _SQLITE_MAGIC:
            return CorruptCacheError(f"step cache {self.path} is damaged ({message})")
        return ForeignCacheError(f"{self.path} is not a flowkernel step cache (not a SQLite database)")


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # the cache stores none: such an entry was written by hand


def _number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _files(path: Path) -> Iterator[str]:
    """The suffixes of the cache's files that exist: the database, its write-ahead log, its index."""
    for suffix in ("", "-wal", "-shm"):
        if path.with_name(path.name + suffix).exists():
            yield suffix
