"""Put several full runs side by side: one Markdown row per benchmark, each run's judged figure in a column.

Noisy rows are judged over three runs (issue 12): run ``benchmarks/run.py --json runs/N.json`` three times,
then ``python benchmarks/combine.py runs/1.json runs/2.json runs/3.json``. A row is met in the combined
table only when it is met in the majority of the runs that have it; each run's load average is printed
in the header, since it says how much the figures can be trusted.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ("combine",)


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    ratio = "" if row["ratio"] is None else f", {row['ratio']:.2f}x"
    flag = {True: " ✔", False: " ✘", None: ""}[row["met"]]
    return f"{row['measured']:.4g} {row['unit']}{ratio}{flag}"


def _describe(index: int, document: dict[str, Any]) -> str:
    environment = document["environment"]
    start, end = environment["load_average_at_start"][0], document["load_average_at_end"][0]
    commit = (environment["git_commit"] or "?")[:7]
    return f"run {index + 1}: {commit}, load {start:.1f}→{end:.1f}, {document['duration_s']:.0f} s"


def combine(documents: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of the runs' rows, in the order they first appear."""
    names: list[str] = []
    by_run: list[dict[str, dict[str, Any]]] = []
    for document in documents:
        rows = {row["name"]: row for row in document["rows"]}
        names += [name for name in rows if name not in names]
        by_run.append(rows)
    loads = [_describe(i, document) for i, document in enumerate(documents)]
    header = ["benchmark", *(f"run {i + 1}" for i in range(len(documents))), "target", "met (majority)"]
    lines = ["; ".join(loads), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        rows = [run.get(name) for run in by_run]
        present = [row for row in rows if row is not None]
        target = present[0]["target"]
        verdicts = [row["met"] for row in present if row["met"] is not None]
        met = "info" if not verdicts else ("MET" if sum(verdicts) * 2 > len(verdicts) else "NOT MET")
        lines.append("| " + " | ".join([name, *map(_cell, rows), target, met]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by benchmarks/run.py --json")
    args = parser.parse_args(argv)
    print(combine([json.loads(path.read_text(encoding="utf-8")) for path in args.runs]))


if __name__ == "__main__":
    main()
