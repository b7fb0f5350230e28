"""The run's outputs print as ``rich.pretty.Pretty`` prints them, without loading it for a line that fits."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console, RenderableType
from rich.pretty import Pretty

from flowkernel.cli.render import pretty_json
from flowkernel.json_values import json_ready

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["", "[red]x[/red]", "'\"", "\\n", "日本語", "e\u0301", "👍🏽", "1e-3", "True", "None"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def printed(renderable: RenderableType, width: int, *, terminal: bool) -> str:
    """What a console ``width`` cells wide prints: with colours (a terminal) or plain (a pipe)."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        highlight=False,
        force_terminal=terminal,
        color_system="truecolor" if terminal else None,
    )
    console.print(renderable)
    return out.getvalue()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES, width=st.integers(min_value=4, max_value=120), terminal=st.booleans())
def test_pretty_json_prints_what_rich_pretty_prints(value: Any, width: int, terminal: bool) -> None:
    value = json_ready(value)
    expected = printed(Pretty(value, indent_guides=False), width, terminal=terminal)
    assert printed(pretty_json(value, width), width, terminal=terminal) == expected
    if not terminal:  # no colours: highlighting is skipped, and nothing shows it
        assert printed(pretty_json(value, width, highlight=False), width, terminal=False) == expected


@pytest.mark.parametrize(
    "value",
    [{"hello": "hello world"}, {"n": 3, "ok": True, "none": None, "xs": [1.5, -2]}, {}, {"日本": "語" * 10}],
)
def test_a_value_that_fits_on_a_line_is_not_a_pretty(value: Any) -> None:
    assert not isinstance(pretty_json(value, 80), Pretty)
    assert printed(pretty_json(value, 80), 80, terminal=True) == printed(Pretty(value), 80, terminal=True)


def test_no_highlighting_without_colours() -> None:
    """A console with no colours (a pipe) would drop the highlighter's styles: none are made."""
    assert pretty_json({"n": 1}, 80, highlight=False).spans == []  # type: ignore[union-attr]
    assert pretty_json({"n": 1}, 80).spans != []  # type: ignore[union-attr]


def test_a_value_longer_than_a_line_is_broken_over_lines_by_rich_pretty() -> None:
    value = {"numbers": list(range(40))}
    shown = pretty_json(value, 40)
    assert isinstance(shown, Pretty)
    assert printed(shown, 40, terminal=False).splitlines()[:3] == ["{", "    'numbers': [", "        0,"]
