"""Replay parity: a journaled run replays to the same result, and resumes to it from any point.

Public, like :func:`~flowkernel.testing.parity.assert_parity`, so a driver's author can prove resume
works on their driver::

    @given(scenario=scenarios(), cut=st.floats(0, 1))
    def test_my_driver_resumes(scenario, cut, tmp_path_factory):
        journals = (SqliteJournal(tmp_path_factory.mktemp("j") / "j.db") for _ in itertools.count())
        assert_replay_parity(scenario, {"mine": MyDriver()}, lambda: next(journals), cuts=(cut,))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..host.driver import Driver
from ..host.journal import Journal, replay
from .parity import ParityError, first_difference
from .scripted import Scenario

__all__ = ("assert_replay_parity",)


def assert_replay_parity(
    scenario: Scenario,
    drivers: Mapping[str, Driver],
    new_journal: Callable[[], Journal],
    *,
    cuts: Iterable[float] = (0.0, 0.5),
    max_concurrency: int | None = None,
) -> None:
    """Run ``scenario`` journaled on the first driver; then replaying its journal, and resuming on every
    driver from the first ``cut`` fraction of its entries (as if the process had died there), must give
    the same canonical result. Raises :class:`ParityError` naming the driver, cut and first difference."""
    recorder_name, recorder = next(iter(drivers.items()))
    with new_journal() as journal:
        reference = recorder.run_blocking(
            scenario.flow, scenario.inputs, run_id=scenario.run_id, max_concurrency=max_concurrency, journal=journal
        ).canonical()
        _compare(reference, replay(scenario.flow, journal, scenario.run_id).canonical(), f"replay of {recorder_name}")
        recorded = journal.load(scenario.run_id)
    for cut in cuts:
        kept = recorded.entries[: int(cut * len(recorded.entries))]
        for name, driver in drivers.items():
            with new_journal() as partial:
                partial.begin(recorded.header)
                for entry in kept:
                    partial.append(scenario.run_id, entry, 0)
                label = f"{name} resuming after {len(kept)} of {len(recorded.entries)} entries"
                try:
                    resumed = driver.run_blocking(scenario.flow, journal=partial, run_id=scenario.run_id, resume=True)
                except Exception as exc:
                    raise ParityError(f"{label} raised {type(exc).__name__}: {exc}") from exc
                _compare(reference, resumed.canonical(), label)


def _compare(reference: dict[str, Any], got: dict[str, Any], label: str) -> None:
    if got != reference:
        where, left, right = first_difference(reference, got)
        raise ParityError(
            f"{label} disagrees with the journaled run at {where}:\n  run: {left!r}\n  {label}: {right!r}"
        )
