"""Regenerate the diagrams in docs/ from the code: ``python docs/generate.py`` (``--check`` in tests).

Each generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``. The
pictures in ``docs/images/`` are generated too: the example flow's graph (SVG, compared byte for byte by
``--check``), and the timeline of a real run of it, recorded in a journal and read back as ``flowkernel
show --timeline`` does. A run's times differ every time, so ``--check`` cannot compare the timeline's
bytes: it checks that the file is there, is an SVG timeline, and draws the example flow as it is now
(a step group per step, each with its attempts' bars) and a run that succeeded.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from flowkernel.diagrams import flow_graph, state_diagram, state_table
from flowkernel.model.flow import Flow
from flowkernel.pictures import graph_svg, timeline_svg

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
GRAPH_IMAGE = IMAGES / "corpus_report_graph.svg"
TIMELINE_IMAGE = IMAGES / "corpus_report_timeline.svg"
SVG = "{http://www.w3.org/2000/svg}"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _example_flow() -> Flow:
    path = ROOT / "examples" / "corpus_report.py"
    spec = importlib.util.spec_from_file_location("corpus_report_for_docs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    flow: Flow = module.flow
    return flow


def _legend_flow() -> Flow:
    """A flow with one edge of each kind, for the legend of ``flowkernel graph``'s charts."""
    from flowkernel import Context, ContextPolicy, Ref, Step, tool

    @tool
    def fetch() -> dict[str, object]:
        return {}

    @tool
    def parse(page: dict[str, object]) -> dict[str, object]:
        return page

    @tool
    def alert(page: dict[str, object]) -> None:
        return None

    @tool
    def summarize(context: dict[str, object]) -> str:
        return ""

    @tool
    def publish(text: str) -> None:
        return None

    @tool
    def clean_up() -> None:
        return None

    return Flow(
        name="legend",
        context=ContextPolicy(),
        steps=[
            Step(id="fetch", tool=fetch),
            Step(id="parse", tool=parse, arguments={"page": Ref("fetch")}),
            Step(id="alert", tool=alert, arguments={"page": Ref("fetch")}, when="steps.parse.errors"),
            Step(id="summary", tool=summarize, arguments={"context": Context()}, after=("parse",)),
            Step(id="publish", tool=publish, arguments={"text": Ref("summary")}, when="steps.summary != ''"),
            Step(id="clean_up", tool=clean_up, after=("publish",)),
        ],
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "state-table": state_table,
    "state-diagram": lambda: f"```mermaid\n{state_diagram()}\n```",
    "example-flow": lambda: f"```mermaid\n{flow_graph(_example_flow())}\n```",
    "graph-legend": lambda: f"```mermaid\n{flow_graph(_legend_flow())}\n```",
}


def render(text: str) -> str:
    """``text`` with every generated block rewritten from the code."""

    def replace(match: re.Match[str]) -> str:
        body = GENERATORS[match["name"]]()
        return f"{match[1]}{body}\n{match[4]}"

    return BLOCK.sub(replace, text)


def example_timeline() -> str:
    """Run the example flow on the sync driver into a fresh journal; its timeline, read back from the journal."""
    from flowkernel.host.journal import SqliteJournal, replay
    from flowkernel_sync import SyncDriver

    flow = _example_flow()
    with tempfile.TemporaryDirectory(prefix="flowkernel-docs-") as directory:
        journal = SqliteJournal(Path(directory) / "journal.sqlite")
        try:
            SyncDriver().run(flow, {"out": directory}, journal=journal, run_id="docs-example")
            result = replay(flow, journal, "docs-example")
        finally:
            journal.close()
    return timeline_svg(result, flow)


def timeline_problems(path: Path, flow: Flow) -> list[str]:
    """Why ``path`` is not a current timeline of a successful run of ``flow`` (nothing if it is)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return [f"{path.name}: {exc}"]
    if root.tag != f"{SVG}svg" or "flowkernel-timeline" not in root.get("class", "").split():
        return [f"{path.name}: not a flowkernel timeline"]
    title = root.find(f"{SVG}title")
    problems = []
    if (
        title is None
        or not (title.text or "").startswith(f"{flow.name} v{flow.version} ")
        or " succeeded " not in (title.text or "")
    ):
        problems.append(f"{path.name}: not a successful run of {flow.name} v{flow.version}")
    drawn = [g.get("data-step") for g in root.iter(f"{SVG}g") if "step" in g.get("class", "").split()]
    if drawn != [step.id for step in flow.steps]:
        problems.append(f"{path.name}: draws the steps {drawn}, not the flow's {[step.id for step in flow.steps]}")
    bars = {r.get("data-step") for r in root.iter(f"{SVG}rect") if "attempt" in r.get("class", "").split()}
    missing = [step.id for step in flow.steps if step.id not in bars]
    if missing:
        problems.append(f"{path.name}: no attempt drawn for {missing}")
    return problems


def images(check: bool) -> list[str]:
    """Write the pictures (or, with ``check``, say which are missing or out of date)."""
    flow = _example_flow()
    graph = graph_svg(flow)
    if not check:
        IMAGES.mkdir(exist_ok=True)
        GRAPH_IMAGE.write_text(graph, encoding="utf-8")
        TIMELINE_IMAGE.write_text(example_timeline(), encoding="utf-8")
        return []
    stale = [] if GRAPH_IMAGE.is_file() and GRAPH_IMAGE.read_text(encoding="utf-8") == graph else [GRAPH_IMAGE.name]
    return stale + timeline_problems(TIMELINE_IMAGE, flow)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated block is out of date")
    args = parser.parse_args()
    stale = images(args.check)
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python docs/generate.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
