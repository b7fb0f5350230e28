"""Drawings as data, written as SVG: every value escaped, numbers short, groups and titles nested."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flowkernel.pictures.svg import Drawing, Group, Line, Path, Rect, Text, render

SVG = "{http://www.w3.org/2000/svg}"


def test_a_drawing_renders_to_the_svg_it_describes() -> None:
    hostile = '"/><script>alert(1)</script><g a="'
    drawing = Drawing(
        width=100,
        height=50.5,
        title="a & b",
        style=".x > .y { fill: red; }",
        shapes=(
            Group(
                (Rect(1.0, 2.25, 3.333, 4, "bar", title=hostile, data={"step": hostile}, rx=2), Line(0, 0, 1, 1)),
                "step",
                data={"step": "s"},
            ),
            Text(5, 6, "<text> & more", anchor="middle"),
            Path("M 0 0 L 1 1", "edge", arrow=True),
        ),
        data={"scale": "2"},
        css="chart",
    )
    svg = render(drawing)
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # well-formed whatever the text
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("100", "50.5", "0 0 100 50.5")
    assert (root.get("class"), root.get("data-scale")) == ("chart", "2")
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "a & b"
    style = root.find(f"{SVG}defs/{SVG}style")
    assert style is not None
    assert style.text == ".x > .y { fill: red; }"
    (group,) = root.findall(f"{SVG}g")
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    assert {k: rect.get(k) for k in ("x", "y", "width", "height", "rx", "class")} == {
        "x": "1", "y": "2.25", "width": "3.33", "height": "4", "rx": "2", "class": "bar"
    }  # fmt: skip
    assert rect.get("data-step") == hostile
    rect_title = rect.find(f"{SVG}title")
    assert rect_title is not None
    assert rect_title.text == hostile
    text = root.find(f"{SVG}text")
    assert text is not None
    assert (text.text, text.get("text-anchor")) == ("<text> & more", "middle")
    path = root.find(f"{SVG}path")
    assert path is not None
    assert path.get("marker-end") == "url(#arrow)"
    assert root.find(f"{SVG}defs/{SVG}marker[@id='arrow']") is not None
