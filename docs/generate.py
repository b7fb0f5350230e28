"""Regenerate the diagrams in docs/ from the code: ``python docs/generate.py`` (``--check`` in tests).

Each generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

from flowkernel.diagrams import flow_graph, state_diagram, state_table
from flowkernel.model.flow import Flow

ROOT = Path(__file__).resolve().parents[1]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated block is out of date")
    args = parser.parse_args()
    stale = []
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
