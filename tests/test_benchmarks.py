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
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    names = json.dumps(report)
    for benchmark in ("chain", "fan-out", "critical", "journal", "dask fan-out", "concurrent runs", "map n="):
        assert benchmark in names.lower()
    mapped = [row for row in report["rows"] if row["name"].startswith("map n=")]
    assert all(row["baseline"] > 0 and row["ratio"] is not None for row in mapped)
    journal = [row for row in report["rows"] if row["name"].startswith("journal n=")]
    assert {row["name"].split("durability=")[-1] for row in journal} == {"process)", "power)"}
    assert all(row["baseline"] > 0 and row["measured"] > row["baseline"] for row in journal)
