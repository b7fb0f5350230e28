"""docs/cache.md and examples/cached_flow.py run as they stand: the page's blocks in order (as a reader's
session, in a fresh directory), the example twice (the second run served from the cache), and through
``flowkernel run --cache`` and ``flowkernel cache stats``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowkernel.cli.app import cli

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cache.md"
EXAMPLE = ROOT / "examples" / "cached_flow.py"


def test_every_example_on_the_cache_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 5
    namespace: dict[str, object] = {"EXAMPLE": str(EXAMPLE)}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert namespace["calls"] == ["step cache", "always fresh", "step cache", "always fresh"]  # v1, -, v2, -
    assert (tmp_path / "cache.db").exists()


def test_the_example_runs_from_the_command_line_with_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"COLUMNS": "160"})
    first = runner.invoke(cli, ["run", str(EXAMPLE), "--cache", "c.db", "--run-id", "r"])
    second = runner.invoke(cli, ["run", str(EXAMPLE), "--cache", "c.db", "--run-id", "r", "--json"])
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert "1 cached" not in first.output
    rows = {line.split("│")[1].strip(): line for line in first.output.splitlines() if line.startswith("│")}
    assert set(rows) == {"words", "measure", "total"}
    result = json.loads(second.output)
    elements = result["steps"][1]["subflow"]["steps"]
    assert [e["attempts"][0]["cached"] for e in elements] == [True, True, True]
    assert result["outputs"] == {"total": {"letters": 15, "vowels": 5}}
    stats = json.loads(runner.invoke(cli, ["cache", "stats", "--cache", "c.db", "--json"]).output)
    assert (stats["entries"], stats["hits"]) == (3, 3)
    third = runner.invoke(cli, ["run", str(EXAMPLE), "--cache", "c.db"])
    assert any("measure" in line and "1 cached" in line for line in third.output.splitlines())


def test_run_refuses_a_cache_file_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my notes\n")
    result = CliRunner().invoke(cli, ["run", str(EXAMPLE), "--cache", str(tmp_path / "notes.txt")])
    assert result.exit_code == 2
    assert "is not a flowkernel step cache" in result.output
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
