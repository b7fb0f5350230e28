"""Pictures on the command line: ``show --timeline FILE.svg|.html`` from a real journal, ``graph --format svg``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .test_journal_commands import ROOT, invoke

SVG = "{http://www.w3.org/2000/svg}"

FLOWS = """
    import os
    import time
    from pathlib import Path

    from flowkernel import Flow, Input, Ref, RetryPolicy, Step, tool

    COUNT = Path(__file__).with_name("flaky-calls")

    @tool
    def slow(x: int) -> int:
        time.sleep(0.05)
        return x

    @tool
    def flaky(x: int) -> int:
        count = int(COUNT.read_text()) if COUNT.exists() else 0
        COUNT.write_text(str(count + 1))
        if count == 0:
            raise ConnectionError("refused")
        return x

    @tool
    def dies(x: int) -> int:
        os._exit(3)

    flow = Flow(
        name="drawn",
        steps=[
            Step(id="a", tool=slow, arguments={"x": Input("n")}),
            Step(id="b", tool=flaky, arguments={"x": Input("n")}, retry=RetryPolicy(initial_delay=0.05)),
            Step(id="c", tool=slow, arguments={"x": Ref("a")}, after=("b",)),
        ],
    )
    crashing = Flow(
        name="crashing",
        steps=[
            Step(id="a", tool=slow, arguments={"x": Input("n")}),
            Step(id="b", tool=dies, arguments={"x": Ref("a")}),
        ],
    )
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    path = directory / "drawn_flows.py"
    path.write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    return path


@pytest.fixture
def journal(flows: Path, tmp_path: Path) -> Path:
    path = tmp_path / "runs.sqlite"
    ran = invoke("run", f"{flows}:flow", "-i", "n=3", "--journal", path, "--run-id", "drawn-1", "-q")
    assert ran.exit_code == 0, ran.output
    return path


def attempt_bars(svg: ET.Element) -> set[tuple[str | None, str | None]]:
    return {
        (rect.get("data-step"), rect.get("data-attempt"))
        for rect in svg.iter(f"{SVG}rect")
        if "attempt" in rect.get("class", "").split() and rect.get("data-step")
    }


def test_show_draws_the_runs_timeline_as_svg(journal: Path, tmp_path: Path) -> None:
    picture = tmp_path / "out" / "timeline.svg"
    picture.parent.mkdir()
    shown = invoke("show", journal, "drawn-1", "--timeline", picture)
    assert shown.exit_code == 0, shown.output
    assert f"wrote the timeline of run drawn-1 to {picture}" in shown.stderr
    assert "succeeded" in shown.stdout  # the result is shown as before
    svg = ET.parse(picture).getroot()
    assert attempt_bars(svg) == {("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")}
    waits = [r for r in svg.iter(f"{SVG}rect") if "wait" in r.get("class", "").split() and r.get("data-step")]
    assert [(w.get("data-step"), w.get("data-after-attempt")) for w in waits] == [("b", "1")]
    critical = {
        g.get("data-step") for g in svg.iter(f"{SVG}g") if {"step", "critical"} <= set(g.get("class", "").split())
    }
    assert "c" in critical


def test_show_draws_an_html_page_and_refuses_other_suffixes(journal: Path, tmp_path: Path) -> None:
    page = tmp_path / "timeline.html"
    assert invoke("show", journal, "drawn-1", "--timeline", page, "--json").exit_code == 0
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    svg = ET.fromstring(text[text.index("<svg") : text.index("</svg>") + len("</svg>")])
    assert attempt_bars(svg) == {("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")}

    refused = invoke("show", journal, "drawn-1", "--timeline", tmp_path / "timeline.png")
    assert refused.exit_code == 2
    assert "must end in .svg or .html" in refused.stderr
    assert not (tmp_path / "timeline.png").exists()

    unwritable = invoke("show", journal, "drawn-1", "--timeline", tmp_path / "no-such-dir" / "t.svg")
    assert unwritable.exit_code == 2
    assert "cannot write the timeline to" in unwritable.stderr


def test_an_unfinished_run_has_no_timeline_yet(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "crashed.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "flowkernel", "run", f"{flows}:crashing", "-i", "n=1", "--journal", journal, "--run-id",
         "crashed"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    shown = invoke("show", journal, "crashed", "--timeline", tmp_path / "t.svg")
    assert shown.exit_code == 2
    assert "run crashed has not finished" in shown.stderr
    assert "flowkernel resume" in shown.stderr
    assert not (tmp_path / "t.svg").exists()


def test_graph_prints_svg_or_mermaid(flows: Path) -> None:
    drawn = invoke("graph", f"{flows}:flow", "--format", "svg")
    assert drawn.exit_code == 0, drawn.output
    svg = ET.fromstring(drawn.stdout)
    nodes = {g.get("data-step"): g.get("data-layer") for g in svg.iter(f"{SVG}g") if "node" in g.get("class", "")}
    assert nodes == {"a": "0", "b": "0", "c": "1"}
    edges = {
        (p.get("data-source"), p.get("data-target"), p.get("data-kind"))
        for p in svg.iter(f"{SVG}path")
        if p.get("data-source")
    }
    assert edges == {("a", "c", "data"), ("b", "c", "order")}

    mermaid = invoke("graph", f"{flows}:flow")
    assert mermaid.stdout.startswith("flowchart LR\n")
    assert "n_b -.-> n_c" in mermaid.stdout
    assert invoke("graph", f"{flows}:flow", "--format", "png").exit_code == 2
