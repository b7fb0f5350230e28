"""Drawings as immutable data, and their SVG text: the one place that writes SVG.

A chart module computes a :class:`Drawing` (shapes with CSS classes and hover titles); :func:`render`
turns it into an SVG document with :mod:`xml.etree.ElementTree`, which escapes every text and attribute
value, so a step id or an error message can never break out of the markup.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ("Drawing", "Group", "Line", "Path", "Rect", "Shape", "Text", "render")

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle; ``title`` is shown on hover, ``data`` become ``data-*`` attributes (for tools and tests)."""

    x: float
    y: float
    width: float
    height: float
    css: str = ""
    title: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    rx: float = 0.0


@dataclass(frozen=True, slots=True)
class Text:
    """A line of text; ``anchor`` is SVG's ``text-anchor`` (start, middle, end)."""

    x: float
    y: float
    text: str
    css: str = ""
    anchor: str = "start"
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A straight line."""

    x1: float
    y1: float
    x2: float
    y2: float
    css: str = ""


@dataclass(frozen=True, slots=True)
class Path:
    """A path (``d`` in SVG's path syntax); ``arrow`` ends it with the drawing's arrowhead marker."""

    d: str
    css: str = ""
    arrow: bool = False
    title: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Group:
    """Shapes that belong together (a step and its sub-flow's rows): one ``<g>`` with a class."""

    shapes: tuple[Shape, ...]
    css: str = ""
    title: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


Shape = Rect | Text | Line | Path | Group


@dataclass(frozen=True, slots=True)
class Drawing:
    """A whole picture: its size, a title, the style sheet its classes use, its shapes, and ``data``
    attributes on the root (the scale a reader needs to map positions back to values)."""

    width: float
    height: float
    title: str
    style: str
    shapes: tuple[Shape, ...]
    data: Mapping[str, str] = field(default_factory=dict)
    css: str = ""


def render(drawing: Drawing) -> str:
    """The SVG document of ``drawing`` (UTF-8 text, no XML declaration, so it can be embedded in HTML)."""
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NAMESPACE,
            "width": _number(drawing.width),
            "height": _number(drawing.height),
            "viewBox": f"0 0 {_number(drawing.width)} {_number(drawing.height)}",
            "role": "img",
            **_classes(drawing.css),
            **_data(drawing.data),
        },
    )
    ET.SubElement(root, "title").text = drawing.title
    defs = ET.SubElement(root, "defs")
    marker = ET.SubElement(
        defs,
        "marker",
        {
            "id": "arrow",
            "viewBox": "0 0 10 10",
            "refX": "10",
            "refY": "5",
            "markerWidth": "8",
            "markerHeight": "8",
            "markerUnits": "userSpaceOnUse",
            "orient": "auto-start-reverse",
        },
    )
    ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "class": "arrowhead"})
    ET.SubElement(defs, "style").text = drawing.style
    for shape in drawing.shapes:
        _add(root, shape)
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _add(parent: ET.Element, shape: Shape) -> None:
    if isinstance(shape, Group):
        element = ET.SubElement(parent, "g", {**_classes(shape.css), **_data(shape.data)})
        _title(element, shape.title)
        for inner in shape.shapes:
            _add(element, inner)
    elif isinstance(shape, Rect):
        attributes = {
            "x": _number(shape.x),
            "y": _number(shape.y),
            "width": _number(shape.width),
            "height": _number(shape.height),
        }
        if shape.rx:
            attributes["rx"] = _number(shape.rx)
        element = ET.SubElement(parent, "rect", {**attributes, **_classes(shape.css), **_data(shape.data)})
        _title(element, shape.title)
    elif isinstance(shape, Text):
        attributes = {"x": _number(shape.x), "y": _number(shape.y), "text-anchor": shape.anchor}
        element = ET.SubElement(parent, "text", {**attributes, **_classes(shape.css)})
        element.text = shape.text
        _title(element, shape.title)
    elif isinstance(shape, Line):
        coordinates = {"x1": shape.x1, "y1": shape.y1, "x2": shape.x2, "y2": shape.y2}
        ET.SubElement(parent, "line", {k: _number(v) for k, v in coordinates.items()} | _classes(shape.css))
    else:
        attributes = {"d": shape.d, **_classes(shape.css), **_data(shape.data)}
        if shape.arrow:
            attributes["marker-end"] = "url(#arrow)"
        _title(ET.SubElement(parent, "path", attributes), shape.title)


def _title(element: ET.Element, title: str | None) -> None:
    if title:
        ET.SubElement(element, "title").text = title


def _classes(css: str) -> dict[str, str]:
    return {"class": css} if css else {}


def _data(data: Mapping[str, str]) -> dict[str, str]:
    return {f"data-{name}": value for name, value in data.items()}


def _number(value: float) -> str:
    """A coordinate with at most two decimals, without trailing zeros (``12``, ``12.5``, ``0.25``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
