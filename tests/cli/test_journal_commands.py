"""The journal on the command line: ``run --journal``, ``runs``, ``show`` and ``resume``, on real SQLite files.

Runs are left incomplete the ways they are in life: a process that dies in the middle of a tool call
(``os._exit``), and Ctrl-C. Tools count their calls in a file next to the flow module, so each test
can tell which calls a resume made again.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowkernel import ErrorInfo, ErrorKind, ExecutionResult, RunStatus
from flowkernel.cli.app import cli
from flowkernel.cli.loading import flow_source, load_flow
from flowkernel.cli.render import error_lines
from flowkernel.host import journal as journal_package
from flowkernel.host.journal import SqliteJournal
from flowkernel_sync import SyncDriver

ROOT = Path(__file__).resolve().parents[2]

FLOWS = """
    import os
    from contextlib import contextmanager
    from pathlib import Path

    from flowkernel import Flow, Input, Ref, Resource, Step, ToolError, tool

    CALLS = Path(__file__).with_name("calls.log")
    CRASH = Path(__file__).with_name("crash-in-b")
    INTERRUPT = Path(__file__).with_name("interrupt-in-b")

    def note(name):
        with CALLS.open("a") as calls:
            calls.write(name + "\\n")

    @tool
    def add(x: int) -> int:
        note("add")
        return x + 1

    @tool
    def times_ten(x: int) -> int:
        note("times_ten")
        if CRASH.exists():
            os._exit(3)  # the process dies in the middle of the call, as with kill -9
        if INTERRUPT.exists():
            INTERRUPT.unlink()
            raise KeyboardInterrupt  # Ctrl-C while the tool runs (inline: the sync driver at concurrency 1)
        return x * 10

    @tool
    def twice(x: int) -> int:
        note("twice")
        return 2 * x

    @tool
    def boom(x: int) -> int:
        raise ValueError(f"no good: {x}")

    def chain(name="demo", version="1", first=add):
        return Flow(
            name=name,
            version=version,
            steps=(
                Step(id="a", tool=first, arguments={"x": Input("n")}),
                Step(id="b", tool=times_ten, arguments={"x": Ref("a")}),
                Step(id="c", tool=add, arguments={"x": Ref("b")}),
            ),
        )

    flow = chain()
    version_two = chain(version="2")
    other_first_tool = chain(first=twice)
    failing = Flow(name="failing", steps=(Step(id="a", tool=boom, arguments={"x": Input("n")}),))

    def call_the_server(x):
        raise ToolError(f"refused {x}", details={"code": -32602, "data": {"n": x}})

    @tool
    def refuse(x: int) -> int:
        return call_the_server(x)

    refusing = Flow(name="refusing", steps=(Step(id="a", tool=refuse, arguments={"x": Input("n")}),))

    @contextmanager
    def open_offset():
        note("open")
        try:
            yield 1000
        finally:
            note("close")

    offset = Resource("offset", open_offset)

    @tool
    def shifted(x: int) -> int:
        return x + offset.get()

    with_resources = Flow(
        name="with_resources",
        steps=(
            Step(id="a", tool=add, arguments={"x": Input("n")}),
            Step(id="b", tool=times_ten, arguments={"x": Ref("a")}),
            Step(id="c", tool=shifted, arguments={"x": Ref("b")}),
        ),
        resources=[offset],
    )
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    """The flow module, in a directory of its own (the tests run from elsewhere)."""
    directory = tmp_path / "project"
    directory.mkdir()
    path = directory / "journal_flows.py"
    path.write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    """Run the CLI in process; click always exits through SystemExit, so anything else is a crash."""
    result = CliRunner(env={"COLUMNS": "160"}).invoke(cli, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"CLI crashed: {result.exception!r}\n{result.output}"
    )
    return result


def calls(flows: Path) -> list[str]:
    log = flows.with_name("calls.log")
    return log.read_text().split() if log.exists() else []


def crash_in_b(flows: Path, journal: Path, run_id: str) -> None:
    """Start a journaled run in a real process that dies while step b runs (after a's completion is recorded)."""
    flows.with_name("crash-in-b").touch()
    done = subprocess.run(
        [sys.executable, "-m", "flowkernel", "run", f"{flows}:flow", "-i", "n=4", "--journal", journal, "--run-id",
         run_id],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    flows.with_name("crash-in-b").unlink()
    assert done.returncode == 3, done.stderr
    assert f"recording run {run_id} in {journal}" in done.stderr


def outputs(result: Result) -> ExecutionResult:
    return ExecutionResult.from_json(result.stdout)


# ---- run --journal, runs, show -----------------------------------------------------------------------


def test_journaled_run_is_listed_and_shown_as_run_showed_it(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    ran = invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--run-id", "first", "--json")
    assert ran.exit_code == 0, ran.output
    assert ran.stderr == f"recording run first in {journal}\n"
    assert outputs(ran).outputs == {"c": 21}
    failed = invoke("run", f"{flows}:failing", "-i", "n=7", "--journal", journal, "--run-id", "second")
    assert failed.exit_code == 1

    listed = invoke("runs", journal, "--json")
    assert listed.exit_code == 0
    runs = json.loads(listed.stdout)
    assert [(r["run_id"], r["flow_name"], r["flow_version"], r["status"]) for r in runs] == [
        ("first", "demo", "1", "succeeded"),
        ("second", "failing", "1", "failed"),
    ]
    assert [(r["steps_done"], r["entries"]) for r in runs] == [(3, 3), (0, 1)]
    assert all(r["finished"] >= r["started"] for r in runs)

    table = invoke("runs", journal)
    assert table.exit_code == 0
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in table.stdout.splitlines() if "│" in line]
    assert [[row[0], row[1], row[2], row[4], row[5]] for row in rows] == [
        ["first", "demo v1", "succeeded", "3", "3"],
        ["second", "failing v1", "failed", "0", "1"],
    ]

    shown = invoke("show", journal, "first", "--json")
    assert shown.exit_code == 0
    assert outputs(shown) == outputs(ran)
    shown_failed = invoke("show", journal, "second")
    assert shown_failed.exit_code == 1
    assert "error in a: [tool] ValueError: no good: 7" in shown_failed.stdout
    assert "run failed (1 failed)" in shown_failed.stdout


def test_show_prints_a_failed_steps_details_and_where_it_raised(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    ran = invoke("run", f"{flows}:refusing", "-i", "n=7", "--journal", journal, "--run-id", "r1")
    assert ran.exit_code == 1
    shown = invoke("show", journal, "r1")
    assert shown.exit_code == 1
    source = flows.read_text().splitlines()
    raise_line = next(n for n, line in enumerate(source, 1) if "raise ToolError" in line)
    call_line = next(n for n, line in enumerate(source, 1) if "return call_the_server(x)" in line)
    lines = shown.stdout.splitlines()
    start = lines.index("  error in a: [tool] flowkernel.errors.ToolError: refused 7")
    error_section = lines[start : start + 6]
    assert error_section[1:3] == [
        '    details: {"code":-32602,"data":{"n":7}}',
        "    raised at (--traceback shows all of it):",
    ]
    assert error_section[3] == f'      File "{flows}", line {raise_line}, in call_the_server'
    assert error_section[4].strip().startswith('raise ToolError(f"refused {x}"')
    assert error_section[5] == "    flowkernel.errors.ToolError: refused 7"
    assert "in refuse" not in shown.stdout  # only the frame that raised, without --traceback
    ran_lines = ran.stdout.splitlines()
    assert ran_lines[ran_lines.index(error_section[0]) :][:6] == error_section  # as run showed it

    full = invoke("show", journal, "r1", "--traceback")
    assert full.exit_code == 1
    tail = full.stdout.splitlines()[start + 2 :]
    assert tail[:2] == ["    traceback:", "    Traceback (most recent call last):"]
    assert f'      File "{flows}", line {call_line}, in refuse' in tail
    assert f'      File "{flows}", line {raise_line}, in call_the_server' in tail

    as_json = invoke("show", journal, "r1", "--json")
    assert as_json.exit_code == 1
    error = json.loads(as_json.stdout)["steps"][0]["error"]
    assert error["details"] == {"code": -32602, "data": {"n": 7}}
    with SqliteJournal(journal) as opened:
        [raised] = [c for entry in opened.load("r1").entries for c in entry.completions]
    assert error["traceback"] == raised.error.traceback  # type: ignore[union-attr]  # in full, as recorded
    assert error["traceback"].startswith("Traceback (most recent call last):\n")
    assert error["traceback"].endswith("flowkernel.errors.ToolError: refused 7\n")


def test_errors_made_by_the_kernel_show_no_traceback() -> None:
    timeout = ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", "attempt 1 timed out after 5 s", "s")
    assert error_lines(timeout) == []
    assert error_lines(timeout, full_traceback=True) == []
    assert error_lines(ErrorInfo(ErrorKind.TOOL, "E", "m", "s", details={"code": 1})) == ['details: {"code":1}']


def test_run_records_where_the_flow_came_from_as_an_absolute_reference(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(flows.parent)
    journal = tmp_path / "runs.db"
    assert invoke("run", "journal_flows.py", "-i", "n=1", "--journal", journal, "--run-id", "by-path").exit_code == 0
    assert invoke("run", "journal_flows:flow", "-i", "n=1", "--journal", journal, "--run-id", "dotted").exit_code == 0
    with SqliteJournal(journal) as opened:
        assert opened.header("by-path").flow_source == f"{flows}:flow"
        assert opened.header("dotted").flow_source == f"{flows}:flow"  # found only from this directory
    assert flow_source("json:dumps") == "json:dumps"  # an importable module stays a module name


def test_durability_reaches_the_journal_and_needs_one(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    class Recording(SqliteJournal):
        def __init__(self, path: Path, *, durability: str = "process", trusted: bool = False) -> None:
            opened.append(durability)
            super().__init__(path, durability=durability, trusted=trusted)  # type: ignore[arg-type]

    monkeypatch.setattr(journal_package, "SqliteJournal", Recording)  # open_journal imports it from there
    journal = tmp_path / "runs.db"
    result = invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--durability", "power")
    assert result.exit_code == 0, result.output
    assert invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal).exit_code == 0
    assert opened == ["power", "process"]
    assert [r.status for r in SqliteJournal(journal).runs()] == ["succeeded", "succeeded"]

    alone = invoke("run", f"{flows}:flow", "-i", "n=1", "--durability", "power")
    assert alone.exit_code == 2
    assert "only applies to a journaled run: add --journal PATH" in alone.stderr
    wrong = invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--durability", "disk")
    assert wrong.exit_code == 2
    assert "'disk' is not one of 'process', 'power'" in wrong.stderr


def test_runs_of_an_empty_journal(tmp_path: Path) -> None:
    journal = tmp_path / "empty.db"
    SqliteJournal(journal).close()
    assert invoke("runs", journal).stdout == f"runs in {journal}: no runs\n"
    assert json.loads(invoke("runs", journal, "--json").stdout) == []


def test_runs_shows_a_journal_path_as_it_is_not_as_markup(tmp_path: Path) -> None:
    """The table's title once went to rich as markup: a path with ``[/b]`` in it raised ``MarkupError``."""
    from flowkernel import Flow, Step, tool

    @tool
    def one() -> int:
        return 1

    journal = tmp_path / "a[" / "b]" / "runs:smile:.db"  # its name holds a[/b]
    journal.parent.mkdir(parents=True)
    with SqliteJournal(journal) as opened:
        SyncDriver().run(Flow(name="f", steps=[Step(id="s", tool=one)]), journal=opened, run_id="r1")
    result = invoke("runs", journal)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    title = "".join(line.strip() for line in lines[: next(k for k, line in enumerate(lines) if line.startswith("┏"))])
    assert title.replace(" ", "") == f"runsin{journal}"  # folded to the table's width


# ---- crash, show, resume ----------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio"])
def test_a_crashed_run_is_incomplete_and_resumes_from_another_directory(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    journal = tmp_path / "runs.db"
    crash_in_b(flows, journal, "r1")
    assert calls(flows) == ["add", "times_ten"]

    (listed,) = json.loads(invoke("runs", journal, "--json").stdout)
    assert (listed["status"], listed["finished"], listed["entries"]) == ("incomplete", None, 1)
    shown = invoke("show", journal, "r1")
    assert shown.exit_code == 1
    assert shown.stdout.splitlines() == [
        "run r1 (flow demo v1) is incomplete: 0 steps done, 1 entry recorded",
        f"resume it with: flowkernel resume {journal} r1",
    ]
    as_json = invoke("show", journal, "r1", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "incomplete"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    resumed = invoke("resume", journal, "r1", "--driver", driver, "--json")
    assert resumed.exit_code == 0, resumed.output
    result = outputs(resumed)
    assert (result.run_id, result.status, result.outputs) == ("r1", RunStatus.SUCCEEDED, {"c": 51})
    assert calls(flows) == ["add", "times_ten", "times_ten", "add"]  # a's call was replayed, not made again

    assert json.loads(invoke("runs", journal, "--json").stdout)[0]["status"] == "succeeded"
    assert outputs(invoke("show", journal, "r1", "--json")) == result
    again = invoke("resume", journal, "r1")
    assert again.exit_code == 0
    assert "run r1 had already finished: nothing to resume" in again.stderr
    assert "run succeeded (3 succeeded)" in again.stdout
    assert calls(flows) == ["add", "times_ten", "times_ten", "add"]


def test_ctrl_c_leaves_a_journaled_run_resumable_and_says_how(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    flows.with_name("interrupt-in-b").touch()
    interrupted = invoke("run", f"{flows}:flow", "-i", "n=2", "-c", "1", "--journal", journal, "--run-id", "r1")
    assert interrupted.exit_code == 1
    assert "run cancelled" in interrupted.stdout
    assert interrupted.stderr.splitlines()[1:] == [
        "interrupted: showing the partial result",
        f"resume the run with: flowkernel resume {journal} r1",
    ]
    assert invoke("show", journal, "r1").exit_code == 1

    resumed = invoke("resume", journal, "r1")
    assert resumed.exit_code == 0, resumed.output
    assert "run succeeded (3 succeeded)" in resumed.stdout
    assert calls(flows) == ["add", "times_ten", "times_ten", "add"]


def test_a_flow_module_with_resources_runs_and_resumes_through_the_cli(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    flows.with_name("interrupt-in-b").touch()
    interrupted = invoke(
        "run", f"{flows}:with_resources", "-i", "n=2", "-c", "1", "--journal", journal, "--run-id", "r1"
    )
    assert interrupted.exit_code == 1
    assert calls(flows) == ["open", "add", "times_ten", "close"]  # closed once, on Ctrl-C too

    resumed = invoke("resume", journal, "r1", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert outputs(resumed).outputs == {"c": 1030}
    assert calls(flows) == ["open", "add", "times_ten", "close", "open", "times_ten", "close"]


def test_resume_with_another_flow_source(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    crash_in_b(flows, journal, "r1")
    moved = flows.with_name("moved_flows.py")
    flows.rename(moved)

    lost = invoke("resume", journal, "r1")
    assert lost.exit_code == 2
    assert f"cannot find the flow '{flows}:flow' run 'r1' was started with" in lost.stderr
    assert "(name it with --flow MODULE:FLOW)" in lost.stderr

    bad = invoke("resume", journal, "r1", "--flow", f"{moved}:nope")
    assert bad.exit_code == 2
    assert "Invalid value for '--flow'" in bad.stderr
    resumed = invoke("resume", journal, "r1", "--flow", f"{moved}:flow", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert outputs(resumed).outputs == {"c": 51}


def test_resume_of_a_run_started_without_a_flow_source(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    with SqliteJournal(journal) as opened:
        flows.with_name("interrupt-in-b").touch()
        with pytest.raises(KeyboardInterrupt):
            SyncDriver().run(load_flow(f"{flows}:flow"), {"n": 0}, journal=opened, run_id="api", max_concurrency=1)
    missing = invoke("resume", journal, "api")
    assert missing.exit_code == 2
    assert "run 'api' recorded no flow source" in missing.stderr
    assert "--flow MODULE:FLOW" in missing.stderr
    resumed = invoke("resume", journal, "api", "--flow", f"{flows}:flow", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert outputs(resumed).outputs == {"c": 11}


# ---- typed errors: one line, exit 2 ------------------------------------------------------------------


def test_a_changed_flow_is_refused_unless_allowed_and_replay_still_checks(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    crash_in_b(flows, journal, "r1")

    changed = invoke("resume", journal, "r1", "--flow", f"{flows}:version_two")
    assert changed.exit_code == 2
    assert changed.stdout == ""
    assert changed.stderr.startswith("Error: cannot resume run 'r1': the structure of flow 'demo' changed")
    assert "--allow-flow-change" in changed.stderr
    assert len(changed.stderr.splitlines()) == 1

    other = invoke("resume", journal, "r1", "--flow", f"{flows}:other_first_tool", "--allow-flow-change")
    assert other.exit_code == 2
    assert other.stderr.startswith("Error: run 'r1' is not deterministic: replaying journal entry 0")
    assert "'a@1 twice' where the journal recorded 'a@1 add'" in other.stderr
    assert len(other.stderr.splitlines()) == 1

    allowed = invoke("resume", journal, "r1", "--flow", f"{flows}:version_two", "--allow-flow-change", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert outputs(allowed).outputs == {"c": 51}


def test_a_run_id_is_used_once(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    assert invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--run-id", "r1").exit_code == 0
    again = invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--run-id", "r1")
    assert again.exit_code == 2
    assert again.stdout == ""
    assert f"Error: {journal} already holds a run 'r1': resume it, or start a run with another id" in again.stderr


@pytest.mark.parametrize("command", ["show", "resume"])
def test_no_such_run(flows: Path, tmp_path: Path, command: str) -> None:
    journal = tmp_path / "runs.db"
    assert invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--run-id", "r1").exit_code == 0
    result = invoke(command, journal, "r2")
    assert result.exit_code == 2
    assert result.stderr == f"Error: {journal} holds no run 'r2' (see: flowkernel runs {journal})\n"


@pytest.mark.parametrize("command", [("runs",), ("show", "r1"), ("resume", "r1"), ("run-journal",)])
def test_foreign_files_are_refused(flows: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database\n")
    other_db = tmp_path / "other.db"
    with closing(sqlite3.connect(other_db)) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    for path, message in (
        (text_file, f"Error: {text_file} is not a flowkernel journal (not a SQLite database)"),
        (other_db, f"Error: {other_db} is a SQLite database but not a flowkernel journal"),
    ):
        if command == ("run-journal",):
            result = invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", path)
        else:
            result = invoke(command[0], path, *command[1:])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(message)
        assert len(result.stderr.splitlines()) == 1
    assert text_file.read_text() == "not a database\n"


def test_journal_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    for args in (("runs",), ("show", "r1"), ("resume", "r1")):
        result = invoke(args[0], tmp_path / "missing.db", *args[1:])
        assert result.exit_code == 2
        assert "Invalid value for 'JOURNAL'" in result.stderr
    assert not (tmp_path / "missing.db").exists()  # not created by looking


def test_damaged_journals_are_refused(flows: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.db"
    crash_in_b(flows, journal, "r1")
    assert invoke("run", f"{flows}:flow", "-i", "n=1", "--journal", journal, "--run-id", "done").exit_code == 0
    with closing(sqlite3.connect(journal)) as db, db:
        db.execute("UPDATE runs SET header_crc = header_crc + 1 WHERE run_id = 'r1'")
        db.execute("UPDATE entries SET crc = crc + 1 WHERE run_id = 'done' AND seq = 1")

    resumed = invoke("resume", journal, "r1")
    assert resumed.exit_code == 2
    assert resumed.stderr == f"Error: {journal}: the header of run 'r1' fails its checksum\n"
    shown = invoke("show", journal, "done")
    assert shown.exit_code == 2
    assert shown.stderr == f"Error: {journal}: run 'done', entry 1 fails its checksum\n"

    with closing(sqlite3.connect(journal)) as db, db:
        db.execute("UPDATE runs SET header_crc = header_crc - 1 WHERE run_id = 'r1'")
        db.execute("UPDATE entries SET crc = crc + 1 WHERE run_id = 'r1' AND seq = 0")
    entry = invoke("resume", journal, "r1")
    assert entry.exit_code == 2
    assert entry.stderr == f"Error: {journal}: run 'r1', entry 0 fails its checksum\n"
    assert calls(flows) == ["add", "times_ten", "add", "times_ten", "add"]  # nothing more ran


# ---- a fix on the way --------------------------------------------------------------------------------


def test_a_timed_out_run_is_shown_as_a_table(tmp_path: Path) -> None:
    flows = tmp_path / "stuck_flow.py"
    flows.write_text(
        "import threading\n"
        "from flowkernel import Flow, Step, tool\n"
        "@tool\n"
        "def stuck() -> None:\n"
        "    threading.Event().wait(2)\n"
        "flow = Flow(name='slow', steps=[Step(id='stuck', tool=stuck)])\n"
    )
    journal = tmp_path / "runs.db"
    timed = invoke("run", f"{flows}:flow", "--deadline", "0.05", "--journal", journal, "--run-id", "r1", "--table")
    assert timed.exit_code == 1, timed.output
    assert "run timed_out (1 cancelled)" in timed.stdout
    assert invoke("show", journal, "r1").stdout == timed.stdout  # show prints every row, as run --table does
