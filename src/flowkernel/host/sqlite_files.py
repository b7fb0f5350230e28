"""What the host's SQLite files (the journal, the step cache) do alike: WAL mode, and write transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("immediate", "use_wal")


def use_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL mode (once for good), retrying while another connection is reading it:
    SQLite refuses the switch at once then, without waiting for the busy timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.002)


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction for the block, its lock taken at once (``BEGIN IMMEDIATE``: a writer that
    must wait does so before reading, not half-way), committed at the end and rolled back on any
    exception. Statements run one by one: ``executescript`` would commit the transaction first."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
