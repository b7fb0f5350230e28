"""Flow files on the command line: validate, schema, and run/graph/resume/show/serve taking a file with
the allowlist from --allow-module, the environment or the project's configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowkernel.cli.app import cli
from flowkernel.files import flow_file_schema

ROOT = Path(__file__).resolve().parents[2]
TOOLBOX = "tests.files.toolbox"

GOOD = f"""\
name: good
steps:
  - id: d
    tool: {TOOLBOX}:double
    arguments: {{x: {{$input: n}}}}
  - id: s
    tool: {TOOLBOX}:add
    arguments: {{a: {{$ref: d}}, b: 1}}
"""


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    return path


def test_validate_a_good_file_exits_0(good: Path) -> None:
    result = invoke("validate", str(good), "--allow-module", TOOLBOX)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"{good}: ok\n"


def test_validate_lists_every_problem_with_file_line_and_column_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: bad
            steps:
              - id: d
                tool: os:system
                arguments: {{command: {{$ref: nowhere}}}}
              - id: e
                tool: {TOOLBOX}:double
                retry: {{max_attempts: -1}}
            """
        )
    )
    result = invoke("validate", str(path), "--allow-module", TOOLBOX)
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}:4:11: steps[0].tool: module 'os' is not allowed")
    assert lines[1] == f"{path}:5:26: steps[0].arguments.command: references unknown step 'nowhere'"
    assert lines[2] == f"{path}:6:5: steps[1].arguments: missing required argument 'x' of tool 'double'"
    assert lines[3].startswith(f"{path}:8:27: steps[1].retry.max_attempts: Input should be greater than or equal to 1")
    assert len(lines) == 4
    assert result.stderr == f"{path}: 4 problems\n"


def test_validate_a_file_that_is_not_there_or_not_yaml(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: [\n")
    result = invoke("validate", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert result.stdout.startswith(f"{tmp_path / 'x.yaml'}:2:1: not valid YAML")
    assert invoke("validate", str(tmp_path / "absent.yaml")).exit_code == 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", f'[project]\nname = "p"\n\n[tool.flowkernel]\nallow-modules = ["{TOOLBOX}"]\n'),
        ("flowkernel.toml", f'allow-modules = ["{TOOLBOX}"]\n'),
    ],
)
def test_the_allowlist_comes_from_the_project_configuration(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / name).write_text(text)
    monkeypatch.chdir(project / "sub")  # found from the working directory upwards
    assert invoke("validate", str(good)).exit_code == 0
    assert invoke("run", str(good), "-i", "n=2", "--json", "-q").exit_code == 0


def test_configuration_beside_the_flow_file_allows_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "downloaded"
    elsewhere.mkdir()
    (elsewhere / "flow.yaml").write_text(GOOD)
    (elsewhere / "flowkernel.toml").write_text('allow-modules = ["tests"]\n')
    monkeypatch.chdir(ROOT / "docs")
    assert invoke("validate", str(elsewhere / "flow.yaml")).exit_code == 2


def test_a_broken_configuration_is_one_line_exit_2(good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flowkernel.toml").write_text('allow-modules = "tests"\n')
    monkeypatch.chdir(tmp_path)
    result = invoke("run", str(good))
    assert result.exit_code == 2
    assert "allow-modules must be a list of module names" in result.stderr
    assert invoke("validate", str(good)).exit_code == 2


def test_the_environment_gives_the_allowlist_too(good: Path) -> None:
    result = invoke("run", str(good), "-i", "n=4", "--json", "-q", env={"FLOWKERNEL_ALLOW_MODULES": TOOLBOX})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"] == {"s": 9}


def test_run_a_file_without_the_module_allowed_is_one_line_naming_the_place_and_the_fix(good: Path) -> None:
    result = invoke("run", str(good), "-i", "n=4")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert f"{good}:4:11: steps[0].tool: module '{TOOLBOX}' is not allowed" in line
    assert f"--allow-module {TOOLBOX}" in line


def test_schema_prints_the_schema() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == flow_file_schema()


def test_graph_of_a_file(good: Path) -> None:
    result = invoke("graph", str(good), "--allow-module", TOOLBOX)
    assert result.exit_code == 0, result.output
    assert "n_d --> n_s" in result.stdout


def test_a_journaled_file_run_resumes_and_shows_from_the_recorded_file(good: Path, tmp_path: Path) -> None:
    journal = tmp_path / "runs.sqlite"
    allow = ("--allow-module", TOOLBOX)
    started = invoke("run", str(good), *allow, "-i", "n=1", "--journal", str(journal), "--run-id", "r1", "-q")
    assert started.exit_code == 0, started.output
    assert f"run r1 in {journal}" in started.stderr
    shown = invoke("show", str(journal), "r1", "--json", *allow)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["outputs"] == {"s": 3}
    resumed = invoke("resume", str(journal), "r1", "--json", "-q", *allow)
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["outputs"] == {"s": 3}
    refused = invoke("resume", str(journal), "r1")
    assert refused.exit_code == 2
    assert "is not allowed" in refused.stderr


def test_serve_loads_files_the_same_way(good: Path) -> None:
    # a real process: serve adds a logging handler on stderr that would outlive an in-process invocation
    done = subprocess.run(
        [sys.executable, "-m", "flowkernel", "serve", str(good)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"module '{TOOLBOX}' is not allowed" in done.stderr


def test_the_example_flow_file_runs_through_the_command_line() -> None:
    pytest.importorskip("mcp", reason="the example calls mcp-server-time: pip install 'flowkernel[mcp,examples]'")
    done = subprocess.run(
        [
            sys.executable, "-m", "flowkernel", "run", "examples/clock_report.yaml", "--allow-module", "file_tools",
            "--input", 'zones=["UTC", "Asia/Tokyo"]', "--json",
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)["outputs"]["lines"]
    assert [line.split(":")[0] for line in lines] == ["UTC", "Asia/Tokyo"]
    assert lines[0].endswith(")")


def test_a_plain_run_of_a_python_flow_does_not_load_the_flow_file_reader() -> None:
    script = (
        "import sys\n"
        "from flowkernel.cli.loading import load_flow\n"
        "load_flow('examples/corpus_report.py:flow')\n"
        "print(sorted(m for m in sys.modules if m == 'yaml' or m.startswith('flowkernel.files')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_serve_offers_a_flow_file_as_an_mcp_tool(good: Path, tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="serving needs the MCP SDK: pip install 'flowkernel[mcp]'")
    import os

    import anyio
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "flowkernel", "serve", str(good), "--allow-module", TOOLBOX],
        env=dict(os.environ),
        cwd=ROOT,
    )

    async def main() -> tuple[list[str], object]:
        with (tmp_path / "server.log").open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                tools = [tool.name for tool in (await client.list_tools()).tools]
                called = await client.call_tool("good", {"n": 5})
                return tools, called.structured_content

    tools, outputs = anyio.run(main)
    assert tools == ["good"]
    assert outputs == {"s": 11}
