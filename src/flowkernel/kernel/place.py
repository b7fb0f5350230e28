"""Where a run sits inside its root run: the root's id, the event list it shares, and the prefixes that
name its steps (event paths) and its calls (call ids as the driver knows them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..events import Event

__all__ = ("Place",)


@dataclass(frozen=True, slots=True)
class Place:
    """The root run is ``Place(run_id, [], "", "")``; a sub-run's place comes from :meth:`child`."""

    run_id: str
    """The root run's id: every event and invoke of the run, sub-runs included, carries it."""
    events: list[Event]
    """The root run's event list: sub-runs append to it, so events come out in the order they happen."""
    path: str
    """The path of the step running this run (``""`` for the root)."""
    calls: str
    """What the driver's call ids of this run start with (``""`` for the root, ``"report/"`` inside)."""
    elements: bool = False
    """A map step's elements: their steps ``item<k>`` are shown as ``<path>[<k>]``."""
    slots: list[int] = field(default_factory=lambda: [0, 1 << 62])
    """The root run's calls in flight, sub-runs' included, and its limit: every run of the tree counts
    its calls here, so the run's ``max_concurrency`` bounds them all."""

    def paths(self, step_ids: Sequence[str]) -> list[str]:
        """The event path of each step."""
        if self.elements:
            return [f"{self.path}[{step_id.removeprefix('item')}]" for step_id in step_ids]
        if not self.path:
            return list(step_ids)
        return [f"{self.path}/{step_id}" for step_id in step_ids]

    def child(self, path: str, step_id: str, elements: bool) -> Place:
        """The place of the run that step ``step_id`` (at ``path``) starts: a sub-flow or map elements."""
        return Place(self.run_id, self.events, path, f"{self.calls}{step_id}/", elements, self.slots)
