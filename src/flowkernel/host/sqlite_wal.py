"""WAL mode for the SQLite files the host keeps (the journal, the step cache), switched on alike."""

from __future__ import annotations

import sqlite3
import time

__all__ = ("use_wal",)


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
