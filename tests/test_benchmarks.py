"""The benchmark suite runs (in its quick smoke mode) and reports every benchmark as a row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run_and_report_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    names = json.dumps(report)
    expected = (
        "chain",
        "fan-out",
        "critical",
        "journal",
        "dask fan-out",
        "concurrent runs",
        "map n=",
        "trio chain",
        "vs langgraph",
    )
    for benchmark in expected:
        assert benchmark in names.lower()
    fanout = [row for row in report["rows"] if row["name"].startswith("fan-out ")]
    assert len(fanout) == 6
    assert all(len(row["samples"]["ratio"]) == 1 for row in fanout)  # one round in quick mode, a ratio per round
    combined = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "combine.py"), str(out), str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    first = report["rows"][0]
    assert f"| {first['name']} | " in combined
    assert combined.count("| " + first["name"] + " |") == 1
    mapped = [row for row in report["rows"] if row["name"].startswith("map n=")]
    assert all(row["baseline"] > 0 and row["ratio"] is not None for row in mapped)
    journal = [row for row in report["rows"] if row["name"].startswith("journal n=")]
    assert {row["name"].split("durability=")[-1] for row in journal} == {"process)", "power)"}
    assert all(row["baseline"] > 0 and row["measured"] > row["baseline"] for row in journal)
