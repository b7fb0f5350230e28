"""End-to-end tests of the ``flowkernel`` command line, in process (CliRunner) and as real processes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowkernel import ExecutionResult, RunStatus, StepStatus
from flowkernel.cli.app import cli
from flowkernel.cli.loading import parse_input_pairs, parse_value
from flowkernel.host import installed_drivers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "corpus_report.py"
CORPUS = ROOT / "examples" / "data" / "corpus"
STEP_IDS = (
    "find_documents",
    "word_counts",
    "line_counts",
    "checksums",
    "longest_words",
    "store",
    "top_words",
    "report",
)


@pytest.fixture(params=installed_drivers())
def driver(request: pytest.FixtureRequest) -> str:
    """Every installed driver, one test each (as anyio's backend fixture does)."""
    name: str = request.param
    return name


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in process; click always exits through SystemExit, so anything else is a crash."""
    result = CliRunner(env=env).invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"CLI crashed: {result.exception!r}\n{result.output}"
    )
    return result


def run_example(*args: str, env: dict[str, str] | None = None) -> Result:
    return invoke("run", f"{EXAMPLE}:flow", *args, env=env)


def write_flow(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


FAILING_FLOW = """
    from flowkernel import Flow, Input, Ref, Step, tool

    @tool
    def echo(value: object) -> object:
        return value

    @tool
    def explode(value: object) -> object:
        raise RuntimeError(f"no good: [bold]{value}[/bold]")

    flow = Flow(
        name="failing",
        steps=(
            Step(id="first", tool=echo, arguments={"value": Input("n")}),
            Step(id="boom", tool=explode, arguments={"value": Ref("first")}),
            Step(id="after_boom", tool=echo, arguments={"value": Ref("boom")}),
            Step(id="independent", tool=echo, arguments={"value": Input("names")}),
        ),
    )

    def make_flow():
        return flow

    def needs_arguments(x):
        return flow

    not_a_flow = 42
"""


def test_the_table_title_shows_the_run_id_as_it_is_not_as_markup(tmp_path: Path) -> None:
    """The title once went to rich as markup: ``[/b]`` raised ``MarkupError`` (a traceback after the run
    had succeeded, and exit 1), ``[b]x[/b]`` lost its brackets, ``:smile:`` became an emoji."""
    flow_file = write_flow(tmp_path, "named.py", FAILING_FLOW)
    for run_id in ("x[/b]:smile:", "[b]y[/b]"):
        result = invoke("run", f"{flow_file}:flow", "-i", "n=3", "-i", "names=[]", "--table", "--run-id", run_id)
        assert result.exit_code == 1, result.output  # the flow fails (its step boom raises)
        assert result.stdout.splitlines()[0].rstrip() == f"failing v1, run {run_id}"


# ---- the example, on every driver ---------------------------------------------------------------


def test_example_runs_on_every_driver_and_writes_real_files(driver: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_example("--driver", driver, "--input", f"out={out}", "--input", "top=4", "--json")
    assert result.exit_code == 0, result.output
    parsed = ExecutionResult.from_json(result.stdout)
    assert parsed.status is RunStatus.SUCCEEDED
    assert [s.id for s in parsed.steps] == list(STEP_IDS)
    assert all(s.status is StepStatus.SUCCEEDED and len(s.attempts) == 1 for s in parsed.steps)
    assert parsed.outputs["report"] == "report.md"
    assert parsed.outputs["database"] == "corpus.sqlite"

    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt"))}
    assert len(texts) == 6
    assert parsed.step("find_documents").output == {"files": list(texts)}
    # wc -l and sha256sum really ran: compare with what Python computes independently.
    assert parsed.step("line_counts").output == {name: text.count("\n") for name, text in texts.items()}
    expected_digests = {name: hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() for name in texts}
    assert parsed.step("checksums").output == expected_digests

    with closing(sqlite3.connect(out / "corpus.sqlite")) as db:
        documents = db.execute("SELECT name, lines, words, sha256 FROM documents ORDER BY name").fetchall()
        keeper = db.execute(
            "SELECT count FROM word_counts WHERE document = 'lighthouse.txt' AND word = 'keeper'"
        ).fetchone()
        totals = dict(db.execute("SELECT word, SUM(count) FROM word_counts GROUP BY word").fetchall())
        stop_words = {w for (w,) in db.execute("SELECT word FROM stop_words")}
    assert [(name, lines, sha) for name, lines, _, sha in documents] == [
        (name, text.count("\n"), expected_digests[name]) for name, text in texts.items()
    ]
    assert keeper == (len(re.findall(r"\bkeeper\b", texts["lighthouse.txt"].lower())),)
    summary = parsed.outputs["summary"]
    assert summary["documents"] == 6
    assert summary["words"] == sum(words for _, _, words, _ in documents) == sum(totals.values())
    assert summary["lines"] == sum(text.count("\n") for text in texts.values())

    top = parsed.outputs["top_words"]
    assert len(top) == 4
    assert not {row["word"] for row in top} & stop_words
    assert all(row["count"] == totals[row["word"]] for row in top)
    assert [row["count"] for row in top] == sorted((row["count"] for row in top), reverse=True)
    assert summary["top_word"] == top[0]["word"]

    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Corpus report\n")
    assert f"6 documents, {summary['lines']} lines, {summary['words']} words" in report
    for name in texts:
        assert f"| {name} | {texts[name].count(chr(10))} |" in report
    for rank, row in enumerate(top, start=1):
        assert f"| {rank} | {row['word']} | {row['count']} |" in report


def test_example_gives_the_same_canonical_result_on_every_driver(tmp_path: Path) -> None:
    canonical = {}
    for name in installed_drivers():
        result = run_example("-d", name, "-i", f"out={tmp_path}", "--run-id", "parity", "--json")
        assert result.exit_code == 0, result.output
        canonical[name] = ExecutionResult.from_json(result.stdout).canonical()
    reference = canonical["sync"]
    assert reference["run_id"] == "parity"
    for name, value in canonical.items():
        assert value == reference, f"{name} differs from sync"


def test_json_output_round_trips_through_from_json(tmp_path: Path) -> None:
    result = run_example("-i", f"out={tmp_path}", "--json", "--run-id", "r1", "--concurrency", "1")
    data = json.loads(result.stdout)
    parsed = ExecutionResult.from_json(result.stdout)
    assert parsed.run_id == data["run_id"] == "r1"
    assert json.loads(parsed.to_json()) == data
    assert all(a["started"] is not None and a["finished"] >= a["started"] for s in data["steps"] for a in s["attempts"])


def test_table_lists_every_step_with_status_and_the_outputs(tmp_path: Path) -> None:
    result = run_example("-i", f"out={tmp_path}", "--run-id", "table-run", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "corpus-report v1, run table-run" in lines[0]
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(STEP_IDS)
    for row, step_id in zip(rows, STEP_IDS, strict=True):
        cells = [cell.strip() for cell in row.strip("│").split("│")]
        assert cells[:3] == [step_id, "succeeded", "1"]
        assert re.fullmatch(r"\d+\.\d (ms|s)", cells[3])
    assert "run succeeded (8 succeeded)" in result.stdout
    assert "'report': 'report.md'" in result.stdout
    assert "'database': 'corpus.sqlite'" in result.stdout


def test_flow_factory_and_default_attribute(tmp_path: Path) -> None:
    by_factory = invoke("run", f"{EXAMPLE}:build_flow", "-i", f"out={tmp_path}", "--json", "--run-id", "x")
    by_default = invoke("run", str(EXAMPLE), "-i", f"out={tmp_path}", "--json", "--run-id", "x")
    assert by_factory.exit_code == by_default.exit_code == 0
    assert (
        ExecutionResult.from_json(by_factory.stdout).canonical()
        == ExecutionResult.from_json(by_default.stdout).canonical()
    )


HOSTILE_VALUES_FLOW = """
    from flowkernel import Flow, Ref, Step, tool

    @tool
    def raw() -> object:
        return {"bytes": b"\\xff\\xfe", "nan": float("nan"), "inf": float("inf"), "set": {"b", "a"}}

    @tool
    def echo(value: object) -> object:
        return value

    steps = [Step(id="raw", tool=raw), Step(id="echo", tool=echo, arguments={"value": Ref("raw")})]
    flow = Flow(name="hostile", steps=steps)
"""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def test_bytes_nan_and_sets_in_outputs_print_as_strict_json_and_in_the_table(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "hostile_values.py", HOSTILE_VALUES_FLOW)
    as_json = invoke("run", f"{path}:flow", "--json")
    assert as_json.exit_code == 0, as_json.output  # was 1, with a UnicodeDecodeError traceback
    data = json.loads(as_json.stdout, parse_constant=_refuse_constant)
    assert data["outputs"]["echo"] == {"bytes": "__4=", "nan": "NaN", "inf": "Infinity", "set": ["a", "b"]}
    table = invoke("run", f"{path}:flow", env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    assert "'bytes': '__4='" in table.stdout
    assert "'nan': 'NaN'" in table.stdout


# ---- inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("2.5", 2.5),
        ('["a", "b"]', ["a", "b"]),
        ('{"k": null}', {"k": None}),
        ("true", True),
        ("hello", "hello"),
        ("/tmp/x", "/tmp/x"),
        ("03", "03"),
        ("NaN", "NaN"),
        ("", ""),
        ('"quoted"', "quoted"),
    ],
)
def test_input_values_are_json_when_they_parse(text: str, value: Any) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_input_pairs_split_on_the_first_equals_sign_and_later_wins() -> None:
    assert parse_input_pairs(["q=a=b", "n=1", "n=2"]) == {"q": "a=b", "n": 2}


def test_inputs_reach_the_flow_parsed(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "echo_inputs.py", FAILING_FLOW)
    result = invoke("run", f"{path}:flow", "-i", "n=3", "-i", 'names=["a", "b"]', "--json")
    parsed = ExecutionResult.from_json(result.stdout)
    assert parsed.step("first").input == {"value": 3}
    assert parsed.step("independent").output == ["a", "b"]


def test_inputs_json_inline_file_and_stdin_with_input_overriding(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "echo_json.py", FAILING_FLOW)
    inputs_file = tmp_path / "inputs.json"
    inputs_file.write_text(json.dumps({"n": 1, "names": ["from-file"]}))
    for source in (str(inputs_file), '{"n": 1, "names": ["from-file"]}'):
        result = invoke("run", f"{path}:flow", "--inputs-json", source, "-i", "n=7", "--json")
        parsed = ExecutionResult.from_json(result.stdout)
        assert parsed.step("first").output == 7
        assert parsed.step("independent").output == ["from-file"]
    from_stdin = CliRunner().invoke(
        cli, ["run", f"{path}:flow", "--inputs-json", "-", "--json"], input='{"n": 5, "names": 1}'
    )
    assert ExecutionResult.from_json(from_stdin.stdout).step("first").output == 5


# ---- failed runs ---------------------------------------------------------------------------------


def test_failed_run_exits_1_and_shows_errors_and_skips(tmp_path: Path, driver: str) -> None:
    path = write_flow(tmp_path, "failing.py", FAILING_FLOW)
    args = ("run", f"{path}:flow", "-d", driver, "-i", "n=3", "-i", "names=x")
    result = invoke(*args, "--table", env={"COLUMNS": "120"})
    assert result.exit_code == 1
    rows = {
        cells[0]: cells
        for cells in (
            [c.strip() for c in line.strip("│").split("│")]
            for line in result.stdout.splitlines()
            if line.startswith("│")
        )
    }
    assert rows["first"][1] == "succeeded"
    assert rows["boom"][1] == "failed"
    assert rows["boom"][4] == "RuntimeError: no good: [bold]3[/bold]"  # shown literally, not as markup
    assert rows["after_boom"][1:5] == ["skipped", "0", "-", "dependency 'boom' failed"]
    assert rows["independent"][1] == "succeeded"
    assert "run failed (2 succeeded, 1 failed, 1 skipped)" in result.stdout
    assert "error in boom: [tool] RuntimeError: no good: [bold]3[/bold]" in result.stdout

    summary = invoke(*args, env={"COLUMNS": "120"})  # without --table: a summary instead of the rows
    assert summary.exit_code == 1
    assert not any(line.startswith("│") for line in summary.stdout.splitlines())
    assert "  skipped: after_boom" in summary.stdout.splitlines()
    assert "run failed (2 succeeded, 1 failed, 1 skipped)" in summary.stdout
    assert "error in boom: [tool] RuntimeError: no good: [bold]3[/bold]" in summary.stdout

    as_json = invoke("run", f"{path}:make_flow", "-d", driver, "-i", "n=3", "-i", "names=x", "--json")
    assert as_json.exit_code == 1
    assert ExecutionResult.from_json(as_json.stdout).status is RunStatus.FAILED


# ---- errors: one clear message, exit 2, no traceback ---------------------------------------------

INVALID_FLOW = """
    from flowkernel import Flow, Ref, Step, tool

    @tool
    def one() -> int:
        return 1

    flow = Flow(name="broken", steps=(Step(id="a", tool=one), Step(id="b", tool=one, after=("nope",))))
"""

INVALID_STEP = """
    from flowkernel import Flow, Step, tool

    @tool
    def one() -> int:
        return 1

    def flow():
        return Flow(name="broken", steps=(Step(id="not an id!", tool=one),))
"""

RAISING_MODULE = """
    SETTINGS = {}
    TIMEOUT = SETTINGS["timeout"]
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-d", "no-such-driver"), "no driver named 'no-such-driver' is installed (installed: "),
        (("-i", "top=0"), "inputs.top: Input should be greater than or equal to 1"),
        (("-i", "corpus=/no/such/dir"), "inputs.corpus: Path does not point to a directory"),
        (("-i", "tpo=3"), "inputs.tpo: unknown input 'tpo'; did you mean 'top'?"),
        (("-i", "no-equals-sign"), "'no-equals-sign' is not NAME=VALUE"),
        (("--inputs-json", "[1, 2]"), "must hold a JSON object of inputs, not a list"),
        (("--inputs-json", "no-such-file.json"), "'no-such-file.json' is neither a file nor a JSON object"),
        (("--concurrency", "0"), "0 is not in the range x>=1"),
    ],
)
def test_bad_options_and_inputs(args: tuple[str, ...], message: str) -> None:
    result = run_example(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_such_module_xyz:flow", "no module named 'no_such_module_xyz'"),
        ("no/such/file.py:flow", "no such file: 'no/such/file.py'"),
        (f"{EXAMPLE}:nope", "has no attribute 'nope' (flows in it: flow)"),
        (f"{EXAMPLE}:STOP_WORDS", "is of type 'frozenset', not a Flow or a function returning one"),
        (f"{EXAMPLE}:flow-name", "is not an attribute name; expected MODULE:FLOW"),
        ("json:dumps", "'json:dumps' is a function that needs arguments"),
        ("json:JSONDecodeError", "not a Flow"),
        (":flow", "names no module"),
    ],
)
def test_bad_flow_references(reference: str, message: str) -> None:
    result = invoke("run", reference)
    assert result.exit_code == 2
    assert "Invalid value for 'MODULE:FLOW|FILE'" in result.stderr
    assert message in result.stderr


def test_not_a_flow_and_factory_needing_arguments(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "refs.py", FAILING_FLOW)
    assert "is of type 'int'" in invoke("run", f"{path}:not_a_flow").stderr
    assert "needs arguments" in invoke("run", f"{path}:needs_arguments").stderr


def test_invalid_flows(tmp_path: Path) -> None:
    invalid = write_flow(tmp_path, "invalid_flow.py", INVALID_FLOW)
    result = invoke("run", f"{invalid}:flow")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: invalid flow 'broken': 1 problem: steps[1] (b).after[0]: waits for unknown step 'nope'",
    ]

    bad_step = write_flow(tmp_path, "invalid_step.py", INVALID_STEP)
    result = invoke("run", f"{bad_step}:flow")
    assert result.exit_code == 2
    assert "invalid flow definition" in result.stderr
    assert "id: String should match pattern" in result.stderr
    assert "errors.pydantic.dev" not in result.stderr


def test_user_code_errors_are_summarised_with_an_opt_in_traceback(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "raising_module.py", RAISING_MODULE)
    result = invoke("run", f"{path}:flow")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: importing 'raising_module.py' raised KeyError: 'timeout' (rerun with --traceback to see where)"
    )
    verbose = invoke("run", f"{path}:flow", "--traceback")
    assert verbose.exit_code == 2
    assert "Traceback (most recent call last)" in verbose.stderr
    assert 'TIMEOUT = SETTINGS["timeout"]' in verbose.stderr


def test_dotted_module_is_found_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "myflows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_flow(package, "failing_flow.py", FAILING_FLOW)
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "myflows.failing_flow:make_flow", "-i", "n=1", "-i", "names=[]", "--json")
    assert ExecutionResult.from_json(result.stdout).flow_name == "failing"


INPUT_MODEL_FLOW = """
    from pydantic import BaseModel

    from flowkernel import Flow, Input, Step, tool

    class Numbers(BaseModel):
        n: int
        m: int

    @tool
    def add(n: int, m: int) -> int:
        return n + m

    arguments = {"n": Input("n"), "m": Input("m")}
    flow = Flow(name="adder", steps=[Step(id="add", tool=add, arguments=arguments)], input_model=Numbers)
    changed = Flow(
        name="adder",
        steps=[Step(id="add", tool=add, arguments=arguments), Step(id="more", tool=add, arguments={"n": 1, "m": 2})],
        input_model=Numbers,
    )
    not_a_flow = 42
"""


def assert_one_line_error(result: Result, message: str) -> None:
    """Exit 2 and exactly one line on stderr, ``Error: ...`` with ``message`` in it; nothing on stdout."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr
    assert "Usage:" not in result.stderr
    assert "--help' for help" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "{example}", "--driver", "nope"), "no driver named 'nope' is installed"),
        (("run", "{tmp}/no_such_file.py:flow"), "no such file"),
        (("run", "no_such_module_xyz:flow"), "no module named 'no_such_module_xyz'"),
        (("run", "{flows}:nope"), "has no attribute 'nope' (flows in it: changed, flow)"),
        (("run", "{flows}:not_a_flow"), "is of type 'int', not a Flow"),
        (("run", "{flows}", "--input", "nonsense"), "'nonsense' is not NAME=VALUE"),
        (("run", "{flows}", "--input", "n=x", "--input", "m=y"), "2 problems: inputs.n: Input should be"),
        (("run", "{flows}", "--inputs-json", "[1]"), "must hold a JSON object of inputs"),
        (("run", "{flows}", "--concurrency", "0"), "0 is not in the range x>=1"),
        (("run", "{flows}", "--scheduler", "tcp://x:1"), "only applies to --driver dask"),
        (("run", "{flows}", "--run-id", ""), "must not be empty"),
        (("run", "{flows}", "--durability", "power"), "only applies to a journaled run"),
        (("run", "{flows}", "--no-such-option"), "No such option '--no-such-option'"),
        (("run",), "Missing argument 'MODULE:FLOW|FILE'"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("runs", "{tmp}/missing.db"), "File '{tmp}/missing.db' does not exist"),
        (("show", "{tmp}/missing.db", "r1"), "File '{tmp}/missing.db' does not exist"),
        (("resume", "{tmp}/missing.db", "r1"), "File '{tmp}/missing.db' does not exist"),
        (("graph", "{tmp}/no_such_file.py"), "no such file"),
        (("graph", "{flows}:not_a_flow"), "is of type 'int', not a Flow"),
        (("run", "{invalid}"), "invalid flow 'broken': 1 problem: steps[1] (b).after[0]: waits for unknown step"),
    ],
)
def test_every_error_that_keeps_a_command_from_running_is_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    places = {
        "example": str(EXAMPLE),
        "flows": str(write_flow(tmp_path, "adder.py", INPUT_MODEL_FLOW)),
        "invalid": str(write_flow(tmp_path, "invalid_flow.py", INVALID_FLOW)),
        "tmp": str(tmp_path),
    }
    assert_one_line_error(invoke(*(arg.format(**places) for arg in args)), message.format(**places))


def test_journal_refusals_are_one_line_with_no_note_before_them(tmp_path: Path) -> None:
    flows = write_flow(tmp_path, "adder.py", INPUT_MODEL_FLOW)
    journal = tmp_path / "runs.db"
    first = invoke("run", f"{flows}:flow", "-i", "n=1", "-i", "m=2", "--journal", str(journal), "--run-id", "r1")
    assert first.exit_code == 0, first.output
    assert first.stderr == f"recording run r1 in {journal}\n"  # a run that starts still says where it is recorded

    taken = invoke("run", f"{flows}:flow", "-i", "n=1", "-i", "m=2", "--journal", str(journal), "--run-id", "r1")
    assert_one_line_error(taken, "already holds a run 'r1'")  # "recording run r1" was printed first

    changed = invoke("resume", str(journal), "r1", "--flow", f"{flows}:changed")
    assert_one_line_error(changed, "the structure of flow 'adder' changed")  # "nothing to resume" was printed first

    again = invoke("resume", str(journal), "r1")
    assert again.exit_code == 0, again.output
    assert again.stderr == "run r1 had already finished: nothing to resume (its record is replayed)\n"
    assert_one_line_error(invoke("resume", str(journal), "nope"), "holds no run 'nope'")
    assert_one_line_error(invoke("show", str(journal), "nope"), "holds no run 'nope'")


def test_help_and_version_are_not_errors() -> None:
    bare = invoke()
    assert "Commands:" in bare.output  # no arguments: the help, as click shows it
    assert invoke("--help").exit_code == 0
    assert invoke("run", "--help").stdout.startswith("Usage: ")
    assert invoke("--version").exit_code == 0


def test_one_line_keeps_every_problem_of_a_list() -> None:
    from flowkernel.cli.common import one_line

    text = "invalid flow 'f': 2 problems\n  - steps[0] (a).after[0]: waits for unknown step 'x'\n  - outputs.y: nope"
    assert (
        one_line(text)
        == "invalid flow 'f': 2 problems: steps[0] (a).after[0]: waits for unknown step 'x'; outputs.y: nope"
    )
    assert one_line("just one") == "just one"
    assert one_line("") == ""


def test_drivers_lists_every_installed_driver() -> None:
    result = invoke("drivers")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == list(installed_drivers())
    assert {"sync", "asyncio", "trio"} <= set(result.stdout.split())


# ---- real processes ------------------------------------------------------------------------------


def run_process(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False, **kwargs)


def test_python_dash_m_runs_the_example(tmp_path: Path) -> None:
    done = run_process(
        sys.executable,
        "-m",
        "flowkernel",
        "run",
        "examples/corpus_report.py:flow",
        "--driver",
        "trio",
        "--input",
        f"out={tmp_path}",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert ExecutionResult.from_json(done.stdout).status is RunStatus.SUCCEEDED
    assert (tmp_path / "report.md").is_file()
    assert (tmp_path / "corpus.sqlite").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "examples/corpus_report.py:flow", "--driver", "nope"), "no driver named 'nope'"),
        (("run", "no_such_module_xyz:flow"), "no module named 'no_such_module_xyz'"),
        (
            ("run", "examples/corpus_report.py:flow", "--input", "top=zero"),
            "inputs.top: Input should be a valid integer",
        ),
        (("run", "tests/cli/test_cli.py:INVALID_FLOW"), "is of type 'str'"),
    ],
)
def test_errors_from_a_real_process_have_no_traceback(args: tuple[str, ...], message: str) -> None:
    done = run_process(sys.executable, "-m", "flowkernel.cli", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("Error: ")


def test_invalid_flow_from_a_real_process(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "invalid_flow.py", INVALID_FLOW)
    done = run_process(sys.executable, "-m", "flowkernel", "run", f"{path}:flow")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Error: invalid flow 'broken': 1 problem: steps[1] (b).after[0]: waits for unknown step 'nope'"
    ]
    assert "Traceback" not in done.stderr


def test_console_script() -> None:
    script = shutil.which("flowkernel")
    if script is None:
        pytest.skip("the flowkernel console script is not on PATH")
    done = run_process(script, "drivers")
    assert done.returncode == 0
    assert done.stdout.split() == list(installed_drivers())
    missing = run_process(script, "run", "examples/corpus_report.py:nope")
    assert missing.returncode == 2
    assert "has no attribute 'nope'" in missing.stderr


def test_missing_click_gives_an_install_hint() -> None:
    code = "import sys; sys.modules['click'] = None; from flowkernel.cli import main; main(['drivers'])"
    done = run_process(sys.executable, "-c", code)
    assert done.returncode == 2
    assert done.stderr.strip() == "flowkernel: the command line needs click: pip install 'flowkernel[cli]'"


SLOW_FLOW = """
    import sys

    import anyio

    from flowkernel import Flow, Ref, Step, tool

    @tool
    def quick() -> str:
        print("quick done", file=sys.stderr, flush=True)
        return "ok"

    @tool
    async def slow(value: str) -> str:
        await anyio.sleep(60)
        return value

    steps = (Step(id="quick", tool=quick), Step(id="slow", tool=slow, arguments={"value": Ref("quick")}))
    flow = Flow(name="slow", steps=steps)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT semantics differ on Windows")
def test_ctrl_c_shows_the_partial_result(tmp_path: Path, driver: str) -> None:
    path = write_flow(tmp_path, "slow_flow.py", SLOW_FLOW)
    env = {**os.environ, "COLUMNS": "120"}
    with subprocess.Popen(
        [sys.executable, "-m", "flowkernel", "run", f"{path}:flow", "-d", driver],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    ) as process:
        assert process.stderr is not None
        assert process.stderr.readline().strip() == "quick done"
        time.sleep(0.3)  # the slow step starts as soon as quick's completion reaches the kernel
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert "interrupted: showing the partial result" in stderr
    assert "  cancelled while running: slow" in stdout.splitlines()  # a summary, not every row
    assert "run cancelled (1 succeeded, 1 cancelled)" in stdout


def test_graph_prints_the_flow_as_mermaid() -> None:
    result = CliRunner().invoke(cli, ["graph", f"{EXAMPLE}:flow"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flowchart LR"
    assert "    n_find_documents --> n_word_counts" in lines
    assert "    n_store --> n_report" in lines


def test_deadline_and_fail_fast_reach_the_run(tmp_path: Path) -> None:
    flows = tmp_path / "timing_flows.py"
    flows.write_text(
        "import threading\n"
        "from flowkernel import Flow, Step, tool\n"
        "gate = threading.Event()\n"
        "@tool\n"
        "def stuck() -> None:\n"
        "    gate.wait(2)\n"
        "@tool\n"
        "def boom() -> None:\n"
        "    raise ValueError('no')\n"
        "slow = Flow(name='slow', steps=[Step(id='stuck', tool=stuck)])\n"
        "mixed = Flow(name='mixed', steps=[Step(id='boom', tool=boom), Step(id='stuck', tool=stuck)])\n"
    )
    timed = CliRunner().invoke(cli, ["run", f"{flows}:slow", "--deadline", "0.05", "--json"])
    assert timed.exit_code == 1, timed.output
    assert json.loads(timed.output)["status"] == "timed_out"
    fast = CliRunner().invoke(cli, ["run", f"{flows}:mixed", "--fail-fast", "--json"])
    assert fast.exit_code == 1, fast.output
    result = json.loads(fast.output)
    assert "fail_fast" in result["reason"]
    assert [s["status"] for s in result["steps"]] == ["failed", "cancelled"]
    bad = CliRunner().invoke(cli, ["run", f"{flows}:slow", "--deadline", "0"])
    assert bad.exit_code == 2
