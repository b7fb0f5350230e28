"""``flowkernel cache stats|clear``: figures per tool (as a table and as JSON), clearing all, one tool or
the expired entries, and one-line errors for a file that is missing or not a cache."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from click.testing import CliRunner, Result

from flowkernel.cli.app import cli
from flowkernel.host.cache import StepCache, cache_key


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "160", **(env or {})}).invoke(cli, [str(arg) for arg in args])


def filled(path: Path) -> Path:
    """A cache with two tools: fetch (2 entries, 1 expired, 3 hits) and parse (1 entry, no expiry)."""
    with StepCache(path) as cache:
        cache.put(cache_key("fetch", "1", {"url": "a"}), '"page a"', ttl=3600)
        cache.put(cache_key("fetch", "1", {"url": "b"}), '"page b"', ttl=3600)
        cache.put(cache_key("parse", "1", {"text": "x"}), '{"words":1}', ttl=None)
        for _ in range(3):
            cache.get(cache_key("fetch", "1", {"url": "a"}))
    with sqlite3.connect(path) as db:  # one entry stored long ago
        db.execute("UPDATE entries SET expires = ? WHERE value = '\"page b\"'", (time.time() - 1,))
    return path


def test_stats_as_json_per_tool(tmp_path: Path) -> None:
    path = filled(tmp_path / "c.db")
    result = invoke("cache", "stats", "--cache", path, "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert (figures["entries"], figures["expired"], figures["hits"]) == (3, 1, 3)
    assert figures["file_bytes"] > 0
    assert figures["tools"] == [
        {"tool": "fetch", "entries": 2, "expired": 1, "hits": 3, "value_bytes": 16},
        {"tool": "parse", "entries": 1, "expired": 0, "hits": 0, "value_bytes": 11},
    ]


def test_stats_as_a_table(tmp_path: Path) -> None:
    path = filled(tmp_path / "c.db")
    result = invoke("cache", "stats", "--cache", path)
    assert result.exit_code == 0, result.output
    assert f"{path}: 3 entries (1 expired), 3 hits served" in result.output
    rows = [line.split("│")[1:-1] for line in result.output.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["fetch", "2", "1", "3", "16"],
        ["parse", "1", "0", "0", "11"],
    ]


def test_clear_expired_then_one_tool_then_all(tmp_path: Path) -> None:
    path = filled(tmp_path / "c.db")
    assert invoke("cache", "clear", "--cache", path, "--expired").output == f"removed 1 expired entry from {path}\n"
    assert invoke("cache", "clear", "--cache", path, "--tool", "parse").output == (
        f"removed 1 entry of tool 'parse' from {path}\n"
    )
    with StepCache(path) as cache:
        assert [(t.tool, t.entries) for t in cache.stats().tools] == [("fetch", 1)]
    assert invoke("cache", "clear", "--cache", path).output == f"removed 1 entry from {path}\n"
    assert json.loads(invoke("cache", "stats", "--cache", path, "--json").output)["entries"] == 0


def test_the_cache_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = filled(tmp_path / "c.db")
    result = invoke("cache", "stats", "--json", env={"FLOWKERNEL_CACHE": str(path)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["entries"] == 3


def test_a_missing_file_or_one_that_is_not_a_cache_is_a_one_line_error(tmp_path: Path) -> None:
    missing = invoke("cache", "stats", "--cache", tmp_path / "nope.db")
    assert missing.exit_code == 2
    assert not (tmp_path / "nope.db").exists()  # never created by looking
    (tmp_path / "text.db").write_text("not a database, just text\n" * 50)
    for command in ("stats", "clear"):
        result = invoke("cache", command, "--cache", tmp_path / "text.db")
        assert result.exit_code == 2
        assert (
            result.output == f"Error: {tmp_path / 'text.db'} is not a flowkernel step cache (not a SQLite database)\n"
        )
    assert (tmp_path / "text.db").read_text() == "not a database, just text\n" * 50


FLAKY_FLOW = """\
from pathlib import Path

from flowkernel import CachePolicy, Flow, Step, tool

HERE = Path(__file__).parent


@tool(cache=CachePolicy())
def lookup(key: str) -> str:
    with (HERE / "calls.log").open("a") as log:
        log.write(key + "\\n")
    if (HERE / "down").exists():
        raise ConnectionError("the service is down")
    return key.upper()


flow = Flow(name="lookup", steps=[Step(id="get", tool=lookup, arguments={"key": "abc"})])
"""


def test_resume_serves_a_retried_step_from_the_cache(tmp_path: Path) -> None:
    flow_file = tmp_path / "lookup_flow.py"
    flow_file.write_text(FLAKY_FLOW)
    (tmp_path / "down").touch()
    journal, cache = tmp_path / "j.db", tmp_path / "c.db"
    failed = invoke("run", flow_file, "--journal", journal, "--run-id", "r", "--cache", cache, "-q")
    assert failed.exit_code == 1, failed.output
    (tmp_path / "down").unlink()
    assert invoke("run", flow_file, "--cache", cache, "-q").exit_code == 0  # another run stores the value
    resumed = invoke("resume", journal, "r", "--retry-failed", "--cache", cache, "--json", "-q")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.startswith("run r failed: running again what did not succeed\n")  # the note, on stderr
    result = json.loads(resumed.output.partition("\n")[2])
    assert result["outputs"] == {"get": "ABC"}
    assert [a["cached"] for a in result["steps"][0]["attempts"]] == [True]  # the re-run: served from the cache
    assert (tmp_path / "calls.log").read_text().splitlines() == ["abc", "abc"]  # not called by the resume


def test_stats_show_a_path_and_tool_names_as_they_are_not_as_markup(tmp_path: Path) -> None:
    """A cache path or tool name with ``[/b]`` or ``:smile:`` in it: once read as markup (a closing tag
    that opens nothing raised ``MarkupError``, a traceback)."""
    path = tmp_path / "a[" / "b]" / "c:smile:.db"  # its name holds a[/b]
    path.parent.mkdir(parents=True)
    with StepCache(path) as cache:
        cache.put(cache_key("fetch[/i]", "1", {"url": "a"}), '"page a"', ttl=None)
    result = invoke("cache", "stats", "--cache", path)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output
    assert f"{path}: 1 entries" in result.output
    assert "│ fetch[/i] " in result.output
