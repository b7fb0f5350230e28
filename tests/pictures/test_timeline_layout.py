"""The timeline's layout on results built by hand: rows, big maps, steps that never ran, odd text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flowkernel import AttemptRecord, AttemptStatus, ExecutionResult, RunStatus, StepRecord, StepStatus
from flowkernel.pictures import timeline_svg
from flowkernel.pictures.timeline import MAX_ELEMENT_ROWS, PLOT_WIDTH, format_duration, layout_timeline

OK = AttemptStatus.SUCCEEDED


def ran(step_id: str, start: float, end: float) -> StepRecord:
    return StepRecord(step_id, StepStatus.SUCCEEDED, attempts=(AttemptRecord(1, OK, start, end),))


def run(*steps: StepRecord) -> ExecutionResult:
    return ExecutionResult("run-1", "f", "1", RunStatus.SUCCEEDED, steps=steps)


def test_a_big_map_draws_its_first_elements_and_says_how_many_it_left_out() -> None:
    elements = run(*(ran(f"item{k}", 0, 1 + k / 100) for k in range(MAX_ELEMENT_ROWS + 5)))
    layout = layout_timeline(run(StepRecord("each", StepStatus.SUCCEEDED, subflow=elements)))
    assert [row.path for row in layout.rows[:2]] == [("each",), ("each", "item0")]
    assert layout.rows[0].group == "map"  # told by the elements' names, the flow not being given
    assert len(layout.rows) == 1 + MAX_ELEMENT_ROWS + 1
    assert layout.rows[-1].status == "more"
    assert layout.rows[-1].note == "… 5 more elements not drawn"
    assert len(layout.bars) == MAX_ELEMENT_ROWS
    (span,) = layout.groups
    assert span.at.end == layout.seconds  # the span covers the elements not drawn too


def test_steps_that_never_ran_get_a_row_that_says_why() -> None:
    skipped = StepRecord("later", StepStatus.SKIPPED, reason="dependency 'first' failed")
    layout = layout_timeline(run(ran("first", 10, 12), skipped))
    assert [row.path for row in layout.rows] == [("first",), ("later",)]
    assert layout.rows[1].note == "skipped: dependency 'first' failed"
    assert [bar.path for bar in layout.bars] == [("first",)]
    assert layout.bars[0].at.x == 230
    assert layout.bars[0].at.width == PLOT_WIDTH


def test_text_is_escaped_and_a_run_without_times_still_draws() -> None:
    failed = StepRecord(
        "odd",
        StepStatus.FAILED,
        attempts=(AttemptRecord(1, AttemptStatus.FAILED),),  # no timestamps
        reason='<script>alert("x")</script> & more',
    )
    svg = timeline_svg(ExecutionResult("<run&>", "f", "1", RunStatus.FAILED, steps=(failed,)))
    root = ET.fromstring(svg)  # well-formed
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'failed: <script>alert("x")</script> & more' in texts
    assert not [
        r
        for r in root.iter("{http://www.w3.org/2000/svg}rect")
        if "attempt" in r.get("class", "").split() and r.get("data-step")
    ]


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (0, 0.00025, 0.25, 1.5, 59.25, 125)] == [
        "0 s",
        "0.25 ms",
        "250 ms",
        "1.5 s",
        "59.25 s",
        "2 min 5 s",
    ]


def test_a_long_note_is_cut_at_the_pictures_edge_and_whole_in_its_title() -> None:
    reason = "dependency 'first' failed " * 20
    svg = timeline_svg(run(ran("first", 0, 1), StepRecord("later", StepStatus.SKIPPED, reason=reason)))
    root = ET.fromstring(svg)
    (note,) = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "note"]
    shown = note.text or ""
    assert shown.endswith("…")
    assert f"skipped: {reason}".startswith(shown[:-1])
    assert float(note.get("x", "0")) + 6.6 * len(shown) <= float(root.get("width", "0"))
    title = note.find("{http://www.w3.org/2000/svg}title")
    assert title is not None
    assert title.text == f"skipped: {reason}"
