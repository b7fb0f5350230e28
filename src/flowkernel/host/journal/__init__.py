"""Durable execution: an append-only journal of each run's completions, resume after a crash, replay.

Pass ``journal=SqliteJournal("runs.db")`` to any driver's ``run``; resume with ``resume=True`` and the
``run_id``. See ``docs/durability.md`` for what each durability setting keeps and how to write tools
that are safe to run again.
"""

from .base import Entry, Journal, RecordedRun, RunHeader, RunSummary
from .codec import JsonCodec, flow_classes
from .errors import RunLeasedError, UnstorableValueError, UntrustedJournalError
from .fingerprint import flow_fingerprint, flow_structure
from .recorder import OpenedRun, RunRecorder, digest, open_run
from .replay import Replayed, replay, replay_entries
from .retry import retry_failed
from .sqlite import Codec, Durability, SqliteJournal

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
