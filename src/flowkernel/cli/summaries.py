"""A journal's runs as plain data (``flowkernel runs --json``, ``show --json``), without rich: the commands
that print JSON never load it; :mod:`.render` draws the same runs as a table."""

from __future__ import annotations

from typing import Any

from ..host.journal.base import RunSummary

__all__ = ("INCOMPLETE", "run_summary_dict")

INCOMPLETE = "incomplete"
"""The status ``flowkernel runs`` shows for a run with no result yet (crashed, interrupted, or running)."""


def run_summary_dict(summary: RunSummary) -> dict[str, Any]:
    """One run of ``flowkernel runs --json``: plain JSON types, times in ISO 8601 (UTC)."""
    return {
        "run_id": summary.run_id,
        "flow_name": summary.flow_name,
        "flow_version": summary.flow_version,
        "status": summary.status,
        "started": summary.started.isoformat(),
        "finished": summary.finished.isoformat() if summary.finished is not None else None,
        "steps_done": summary.steps_done,
        "entries": summary.entries,
    }
