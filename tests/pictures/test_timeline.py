"""The timeline of a real run, checked by reading the SVG back: a bar per attempt where its times put it.

The run (``timeline_flow``) happened on the sync driver and was read back from its SQLite journal; the
expected positions are computed here from the result's timestamps, independently of the layout code.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from flowkernel import AttemptRecord, ExecutionResult, Flow, StepRecord
from flowkernel.pictures import timeline_html, timeline_svg
from flowkernel.pictures.timeline import LABEL_WIDTH, MIN_BAR_WIDTH, PLOT_WIDTH

from .timeline_flow import CRITICAL

SVG = "{http://www.w3.org/2000/svg}"


def attempts(result: ExecutionResult, prefix: str = "") -> Iterator[tuple[str, StepRecord, AttemptRecord]]:
    """Every timed attempt of the run and its sub-runs, with its step's path (``squares/item2``)."""
    for record in result.steps:
        path = f"{prefix}{record.id}"
        for attempt in record.attempts:
            if attempt.started is not None:
                yield path, record, attempt
        if record.subflow is not None:
            yield from attempts(record.subflow, f"{path}/")


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def find(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    """The ``tag`` elements with class ``css`` under ``root``, leaving out the legend's swatches."""
    legend = {id(e) for g in root.iter(f"{SVG}g") if "legend" in classes(g) for e in g.iter()}
    return [e for e in root.iter(f"{SVG}{tag}") if css in classes(e) and id(e) not in legend]


@pytest.fixture(scope="module")
def drawing(recorded_run: tuple[Flow, ExecutionResult]) -> ET.Element:
    flow, result = recorded_run
    return ET.fromstring(timeline_svg(result, flow))


def test_a_bar_per_attempt_at_the_time_it_ran(recorded_run: tuple[Flow, ExecutionResult], drawing: ET.Element) -> None:
    _, result = recorded_run
    timed = list(attempts(result))
    origin = min(a.started for _, _, a in timed if a.started is not None)
    end = max(a.finished for _, _, a in timed if a.finished is not None)
    scale = PLOT_WIDTH / (end - origin)
    drawn = find(drawing, "rect", "attempt")
    bars = {(b.get("data-step"), int(b.get("data-attempt", "0"))): b for b in drawn}
    assert len(bars) == len(drawn)  # one bar per attempt, no more
    assert set(bars) == {(path, a.attempt) for path, _, a in timed}
    assert len(timed) == 1 + 3 + 1 + 3 + 2 + 1  # source, flaky x3, broken, three elements, first, total, finish
    for path, _, attempt in timed:
        assert attempt.started is not None
        assert attempt.finished is not None
        bar = bars[(path, attempt.attempt)]
        assert float(bar.get("x", "nan")) == pytest.approx(LABEL_WIDTH + (attempt.started - origin) * scale, abs=0.01)
        width = max((attempt.finished - attempt.started) * scale, MIN_BAR_WIDTH)
        assert float(bar.get("width", "nan")) == pytest.approx(width, abs=0.01)
        assert attempt.status in classes(bar)
    # the sleeps are visible: the slowest element slept 0.25 s, the quickest 0.05 s
    assert float(bars[("squares/item2", 1)].get("width", "0")) >= 0.25 * scale
    assert float(bars[("squares/item2", 1)].get("width", "0")) > float(bars[("squares/item0", 1)].get("width", "0"))
    assert float(drawing.get("data-px-per-second", "nan")) == pytest.approx(scale)


def test_retries_and_the_waits_between_them_are_drawn(
    recorded_run: tuple[Flow, ExecutionResult], drawing: ET.Element
) -> None:
    _, result = recorded_run
    flaky = result.step("flaky").attempts
    assert [a.status for a in flaky] == ["failed", "failed", "succeeded"]
    bars = {
        int(b.get("data-attempt", "0")): b for b in find(drawing, "rect", "attempt") if b.get("data-step") == "flaky"
    }
    assert "retry" not in classes(bars[1])
    assert {"retry"} <= classes(bars[2]) & classes(bars[3])
    waits = {int(w.get("data-after-attempt", "0")): w for w in find(drawing, "rect", "wait")}
    assert set(waits) == {1, 2}
    scale = float(drawing.get("data-px-per-second", "nan"))
    for n, wait in waits.items():
        before, after = flaky[n - 1], flaky[n]
        assert before.finished is not None
        assert after.started is not None
        assert before.retry_in is not None
        bar = bars[n]
        assert float(wait.get("x", "nan")) == pytest.approx(
            float(bar.get("x", "0")) + float(bar.get("width", "0")), abs=0.02
        )
        assert float(wait.get("width", "nan")) == pytest.approx((after.started - before.finished) * scale, abs=0.02)
        assert after.started - before.finished >= before.retry_in - 1e-3  # the backoff was waited
        title = wait.find(f"{SVG}title")
        assert title is not None
        assert "backoff" in (title.text or "")
    assert flaky[0].retry_in == pytest.approx(0.03)
    assert flaky[1].retry_in == pytest.approx(0.06)


def test_failures_are_marked_with_their_error(drawing: ET.Element) -> None:
    marks = {(m.get("data-step"), m.get("data-attempt")) for m in find(drawing, "path", "failure-mark")}
    assert marks == {("flaky", "1"), ("flaky", "2"), ("broken", "1")}
    failed = [b for b in find(drawing, "rect", "attempt") if "failed" in classes(b)]
    assert {(b.get("data-step"), b.get("data-attempt")) for b in failed} == marks
    title = next(b for b in failed if b.get("data-step") == "flaky").find(f"{SVG}title")
    assert title is not None
    assert "ConnectionError: call 1: <refused> & dropped" in (title.text or "")  # escaped in the file, intact here


def step_group(drawing: ET.Element, path: str) -> ET.Element:
    (group,) = [g for g in drawing.iter(f"{SVG}g") if g.get("data-step") == path]
    return group


def test_map_elements_and_sub_flow_steps_are_grouped_under_their_step(drawing: ET.Element) -> None:
    squares = step_group(drawing, "squares")
    assert {"group", "map"} <= classes(squares)
    inner = {g.get("data-step") for g in squares.iter(f"{SVG}g") if "step" in classes(g)} - {"squares"}
    assert inner == {"squares/item0", "squares/item1", "squares/item2"}
    for element in inner:  # each element's bar is inside the map step's group
        assert any(r.get("data-step") == element for r in find(squares, "rect", "attempt"))
    (span,) = [r for r in find(squares, "rect", "span") if r.get("data-step") == "squares"]
    assert "map" in classes(span)
    element_bars = list(find(squares, "rect", "attempt"))
    start = min(float(r.get("x", "0")) for r in element_bars)
    end = max(float(r.get("x", "0")) + float(r.get("width", "0")) for r in element_bars)
    assert float(span.get("x", "nan")) == pytest.approx(start, abs=0.02)
    assert float(span.get("x", "0")) + float(span.get("width", "0")) == pytest.approx(end, abs=0.02)

    nested = step_group(drawing, "nested")
    assert {"group", "subflow"} <= classes(nested)
    inner = {g.get("data-step") for g in nested.iter(f"{SVG}g") if "step" in classes(g)} - {"nested"}
    assert inner == {"nested/first", "nested/total"}
    assert not [g for g in squares.iter(f"{SVG}g") if (g.get("data-step") or "").startswith("nested")]


def test_the_critical_path_is_highlighted(drawing: ET.Element) -> None:
    critical_bars = {b.get("data-step") for b in find(drawing, "rect", "attempt") if "critical" in classes(b)}
    assert critical_bars == CRITICAL - {"squares", "nested"}  # the map and sub-flow steps have no bars of their own
    critical_steps = {g.get("data-step") for g in drawing.iter(f"{SVG}g") if {"step", "critical"} <= classes(g)}
    assert critical_steps == CRITICAL
    critical_spans = {r.get("data-step") for r in find(drawing, "rect", "span") if "critical" in classes(r)}
    assert critical_spans == {"squares", "nested"}


def test_the_html_page_holds_the_same_drawing(recorded_run: tuple[Flow, ExecutionResult]) -> None:
    flow, result = recorded_run
    page = timeline_html(result, flow)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    svg = ET.fromstring(page[start:end])
    assert len(find(svg, "rect", "attempt")) == len(find(ET.fromstring(timeline_svg(result, flow)), "rect", "attempt"))
    assert "<title>" in page[start:end]  # hover titles
