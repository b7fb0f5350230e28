"""Durable execution: an append-only journal of each run's completions, resume after a crash, replay.

Pass ``journal=SqliteJournal("runs.db")`` to any driver's ``run``; resume with ``resume=True`` and the
``run_id``. See ``docs/durability.md`` for what each durability setting keeps and how to write tools
that are safe to run again.

The SQLite store loads on first use (PEP 562): every run imports this package for :func:`open_run`, and
most runs have no journal, so they need not pay for ``sqlite3`` (and ``pickle``, ``socket``).
"""

from typing import TYPE_CHECKING, Any

from .base import Entry, Journal, RecordedRun, RunHeader, RunSummary
from .codec import JsonCodec, flow_classes
from .errors import RunLeasedError, UnstorableValueError, UntrustedJournalError
from .fingerprint import flow_fingerprint, flow_structure
from .recorder import OpenedRun, RunRecorder, digest, open_run
from .replay import Replayed, replay, replay_entries
from .retry import retry_failed

if TYPE_CHECKING:
    from .sqlite import Codec, Durability, SqliteJournal

_FROM_SQLITE = ("Codec", "Durability", "SqliteJournal")

__all__ = (
    "Codec",
    "Durability",
    "Entry",
    "Journal",
    "JsonCodec",
    "OpenedRun",
    "RecordedRun",
    "Replayed",
    "RunHeader",
    "RunLeasedError",
    "RunRecorder",
    "RunSummary",
    "SqliteJournal",
    "UnstorableValueError",
    "UntrustedJournalError",
    "digest",
    "flow_classes",
    "flow_fingerprint",
    "flow_structure",
    "open_run",
    "replay",
    "replay_entries",
    "retry_failed",
)


def __getattr__(name: str) -> Any:
    """``Codec``, ``Durability`` and ``SqliteJournal``, imported from the SQLite store on first use."""
    if name not in _FROM_SQLITE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import sqlite

    value = getattr(sqlite, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
