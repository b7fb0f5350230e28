"""``graph --format svg``'s picture, read back: a box per step in its layer, an edge per dependency by kind."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings

from flowkernel import Context, ContextPolicy, Flow, Input, Item, Ref, Step, tool
from flowkernel.diagrams import flow_edges
from flowkernel.pictures import graph_svg
from flowkernel.testing import scenarios
from flowkernel.testing.scripted import Scenario

SVG = "{http://www.w3.org/2000/svg}"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@tool
def fetch() -> dict[str, object]:
    return {}


@tool
def parse(page: dict[str, object]) -> list[int]:
    return []


@tool
def summarize(context: dict[str, object]) -> str:
    return ""


@tool
def each(x: int) -> int:
    return x


inner = Flow(name="inner", steps=[Step(id="one", tool=each, arguments={"x": Input("x")})])

FLOW = Flow(
    name="drawn",
    context=ContextPolicy(),
    steps=[
        Step(id="fetch", tool=fetch),
        Step(id="parse", tool=parse, arguments={"page": Ref("fetch")}),
        Step(id="alert", tool=parse, arguments={"page": Ref("fetch")}, when="steps.parse"),
        Step(id="summary", tool=summarize, arguments={"context": Context()}, after=("parse",)),
        Step(id="mapped", tool=each, map=Ref("parse"), arguments={"x": Item()}),
        Step(id="nested", flow=inner, arguments={"x": 1}, after=("summary",)),
        Step(id="last", tool=each, arguments={"x": 1}, after=("fetch", "nested")),
    ],
)


def boxes(root: ET.Element) -> dict[str, tuple[ET.Element, tuple[float, float, float, float]]]:
    """Each step's group and its box (x, y, width, height)."""
    found = {}
    for group in root.iter(f"{SVG}g"):
        if "node" in group.get("class", "").split():
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            box = tuple(float(rect.get(name, "nan")) for name in ("x", "y", "width", "height"))
            found[group.get("data-step", "")] = (group, box)
    return found  # type: ignore[return-value]


def edge_paths(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split() and p.get("data-source")]


def ends(path: ET.Element) -> tuple[tuple[float, float], tuple[float, float]]:
    numbers = [float(n) for n in NUMBER.findall(path.get("d", ""))]
    return (numbers[0], numbers[1]), (numbers[-2], numbers[-1])


def test_a_box_per_step_in_its_layer_and_an_edge_per_dependency() -> None:
    root = ET.fromstring(graph_svg(FLOW))
    drawn = boxes(root)
    assert set(drawn) == {step.id for step in FLOW.steps}
    layers = {step_id: int(group.get("data-layer", "-1")) for step_id, (group, _) in drawn.items()}
    assert layers == {"fetch": 0, "parse": 1, "alert": 2, "summary": 2, "mapped": 2, "nested": 3, "last": 4}
    for a, b in ((a, b) for a in layers for b in layers if layers[a] < layers[b]):
        assert drawn[a][1][0] + drawn[a][1][2] < drawn[b][1][0]  # whole columns left to right
    assert "map" in drawn["mapped"][0].get("class", "")
    assert "subflow" in drawn["nested"][0].get("class", "")
    paths = edge_paths(root)
    kinds = {(p.get("data-source"), p.get("data-target")): (p.get("data-kind"), p.get("data-when")) for p in paths}
    assert len(kinds) == len(paths)
    assert kinds == {(e.source, e.target): (e.kind, str(e.when).lower()) for e in flow_edges(FLOW)}
    assert kinds[("parse", "summary")] == ("context", "false")
    assert kinds[("parse", "alert")] == ("order", "true")
    assert kinds[("fetch", "parse")] == ("data", "false")
    for path in paths:  # from the source's right side to the target's left side, with an arrowhead
        (x1, y1), (x2, y2) = ends(path)
        sx, sy, sw, sh = drawn[path.get("data-source", "")][1]
        tx, ty, _, th = drawn[path.get("data-target", "")][1]
        assert (x1, y1) == pytest.approx((sx + sw, sy + sh / 2), abs=0.011)
        assert (x2, y2) == pytest.approx((tx, ty + th / 2), abs=0.011)
        assert path.get("marker-end") == "url(#arrow)"
    assert {p.get("class") for p in paths} >= {"edge data", "edge context", "edge order when", "edge order"}


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@settings(max_examples=30, deadline=None)
@given(scenario=scenarios(max_steps=15))
def test_any_flow_draws_boxes_apart_and_edges_left_to_right(scenario: Scenario) -> None:
    root = ET.fromstring(graph_svg(scenario.flow))
    drawn = boxes(root)
    assert set(drawn) == {step.id for step in scenario.flow.steps}
    placed = [box for _, box in drawn.values()]
    assert not [(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :] if overlap(a, b)]
    paths = edge_paths(root)
    assert len(paths) == len(flow_edges(scenario.flow))
    for path in paths:
        (x1, _), (x2, _) = ends(path)
        assert x1 < x2
        # an edge that skips layers runs through lanes, never through a box it does not connect
        xs = [float(n) for n in NUMBER.findall(path.get("d", ""))[0::2]]
        ys = [float(n) for n in NUMBER.findall(path.get("d", ""))[1::2]]
        for step_id, (_, (bx, by, bw, bh)) in drawn.items():
            if step_id in (path.get("data-source"), path.get("data-target")):
                continue
            assert not any(bx <= x <= bx + bw and by <= y <= by + bh for x, y in zip(xs, ys, strict=True))
