"""The pictures docs/generate.py writes, and what its ``--check`` accepts of a timeline (which cannot be
compared byte for byte: the times differ every run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from flowkernel import Flow, Step, tool
from flowkernel.pictures import timeline_svg
from flowkernel.result import ExecutionResult, RunStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate_for_tests", ROOT / "docs" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_fresh_timeline_of_the_example_passes_the_check(generate: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "timeline.svg"
    path.write_text(generate.example_timeline())  # a real run of the example, into a journal and back
    assert generate.timeline_problems(path, generate._example_flow()) == []


def test_the_check_refuses_a_stale_or_broken_timeline(generate: ModuleType, tmp_path: Path) -> None:
    flow = generate._example_flow()
    path = tmp_path / "timeline.svg"
    assert generate.timeline_problems(path, flow) == [f"timeline.svg: [Errno 2] No such file or directory: '{path}'"]
    path.write_text("<svg")
    assert generate.timeline_problems(path, flow)[0].startswith("timeline.svg: unclosed token")
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    assert generate.timeline_problems(path, flow) == ["timeline.svg: not a flowkernel timeline"]

    @tool
    def one() -> int:
        return 1

    other = Flow(name=flow.name, version=flow.version, steps=[Step(id="find_documents", tool=one)])
    result = ExecutionResult("r", flow.name, flow.version, RunStatus.FAILED)
    path.write_text(timeline_svg(result, other))  # the flow's steps changed since, and the run failed
    problems = generate.timeline_problems(path, flow)
    assert problems[0] == f"timeline.svg: not a successful run of {flow.name} v{flow.version}"
    assert problems[1].startswith("timeline.svg: draws the steps [], not the flow's ['find_documents',")
    assert problems[2].startswith("timeline.svg: no attempt drawn for ['find_documents',")


def test_the_committed_pictures_are_current(generate: ModuleType) -> None:
    flow = generate._example_flow()
    assert generate.timeline_problems(generate.TIMELINE_IMAGE, flow) == []
    assert generate.GRAPH_IMAGE.read_text() == generate.graph_svg(flow)
