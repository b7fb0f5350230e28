"""Progress messages of served flows (``flowkernel.mcp.reporting``), from the events of real runs."""

from __future__ import annotations

from pathlib import Path

from flowkernel import CachePolicy, Fallback, Flow, Step, tool
from flowkernel.events import Event
from flowkernel.host import load_driver
from flowkernel.host.cache import StepCache
from flowkernel.mcp.reporting import progress_message


@tool
def double(x: int) -> int:
    return 2 * x


@tool
def breaks(x: int) -> int:
    raise ValueError(f"no {x}")


def test_each_finished_step_says_how_it_ended_a_cache_hit_included(tmp_path: Path) -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="cached", tool=double, arguments={"x": 1}, cache=CachePolicy()),
            Step(id="fresh", tool=double, arguments={"x": 2}),
            Step(id="fell_back", tool=breaks, arguments={"x": 3}, on_error=Fallback(value=0)),
            Step(id="failed", tool=breaks, arguments={"x": 4}, after=("fresh",)),
            Step(id="skipped", tool=double, arguments={"x": 5}, after=("failed",)),
        ],
    )
    runs: list[list[Event]] = [[], []]
    with StepCache(tmp_path / "cache.db") as cache:
        for events in runs:
            load_driver("sync").run_blocking(flow, cache=cache, on_event=events.append, fail_fast=False)
    messages = [{message for message in map(progress_message, events) if message} for events in runs]
    assert messages[1] == {
        "cached: succeeded (cached)",
        "fresh: succeeded",
        "fell_back: succeeded (fallback)",
        "failed: failed (ValueError: no 4)",
        "skipped: skipped (dependency 'failed' failed)",
    }
    assert messages[0] == messages[1] - {"cached: succeeded (cached)"} | {"cached: succeeded"}
