"""The side-by-side view of two results: only where they differ, changed lines marked."""

from __future__ import annotations

from flowkernel.testing.render import side_by_side


def test_changed_lines_are_marked_and_far_away_equal_lines_left_out() -> None:
    left = [f"line {i}" for i in range(12)]
    right = [*left[:2], "line 2 changed", *left[3:10], "line 10 changed", "line 11", "only right"]
    assert side_by_side(left, right, "A", "B", width=45) == [
        "A                        B",
        "--------------------     --------------------",
        "line 0                   line 0",
        "line 1                   line 1",
        "line 2                |  line 2 changed",
        "line 3                   line 3",
        "line 4                   line 4",
        "line 5                   line 5",
        "...                      ...",
        "line 7                   line 7",
        "line 8                   line 8",
        "line 9                   line 9",
        "line 10               |  line 10 changed",
        "line 11                  line 11",
        "                      >  only right",
    ]


def test_lines_too_long_for_their_column_are_cut() -> None:
    rows = side_by_side(["x" * 30], ["y" * 30], "A", "B", width=45)
    assert rows[2] == "x" * 19 + "…" + "  |  " + "y" * 19 + "…"
