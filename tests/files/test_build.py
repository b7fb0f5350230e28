"""Flow files into flows: every field a Python flow can say as data, tools found only where allowed,
sub-flows by file and by name, and every problem at once with its line and column."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowkernel import CachePolicy, Context, Fallback, Input, Item, Ref, RetryPolicy
from flowkernel.errors import FileProblem, FlowFileError
from flowkernel.files import check_flow_file, load_flow_file
from flowkernel.model.refs import MISSING
from flowkernel_sync import SyncDriver

from . import toolbox
from .conftest import TOOLBOX

Write = Callable[..., Path]


def problems_of(path: Path, allow: tuple[str, ...] = (TOOLBOX,)) -> list[tuple[int, int, str]]:
    found = check_flow_file(path, allow_modules=allow)
    assert all(isinstance(p, FileProblem) for p in found)
    return [(p.line, p.column, f"{p.location}: {p.message}") for p in found]


def test_every_field_of_a_step_reads_into_the_model(write: Write) -> None:
    path = write(
        "all.yaml",
        f"""\
        flowkernel: 1
        name: all
        version: 3
        description: every field
        context: {{collision: warn}}
        steps:
          - id: first
            tool: {TOOLBOX}:echo
            arguments:
              value:
                items: [{{$input: rows, path: "[*].n", default: []}}, 2]
                literal: {{$literal: {{$ref: not-a-ref}}}}
          - id: each
            tool: {TOOLBOX}:double
            map: {{$ref: first, path: "items[0]"}}
            max_concurrency: 2
            arguments: {{x: {{$item: n, default: 0}}}}
            retry: {{max_attempts: 4, initial_delay: 0, retry_on: [RuntimeError]}}
            timeout: 2.5
            cache: {{version: "2", ttl: 60}}
            on_error: continue
            when: inputs.go
          - id: rescue
            tool: {TOOLBOX}:fail
            arguments: {{value: {{$context: first}}}}
            after: [each]
            join: any
            on_error: {{fallback: {{value: {{ok: false}}}}}}
          - id: other
            tool: {TOOLBOX}:fail
            cache: false
            on_error: {{fallback: {{tool: {TOOLBOX}:echo}}}}
        outputs:
          rescued: {{$ref: rescue, path: ok, default: null}}
        """,
    )
    flow = load_flow_file(path, allow_modules=[TOOLBOX])
    assert (flow.name, flow.version, flow.description) == ("all", "3", "every field")
    assert flow.context is not None
    assert flow.context.collision == "warn"
    first, each, rescue, other = flow.steps
    assert first.tool is toolbox.echo
    rows = first.arguments["value"]["items"][0]
    assert isinstance(rows, Input)
    assert (rows.name, rows.path, rows.default) == ("rows", "[*].n", [])
    assert first.arguments["value"]["literal"] == {"$ref": "not-a-ref"}
    assert each.map == Ref("first", "items[0]")
    assert isinstance(each.map, Ref)
    assert each.map.default is MISSING
    assert each.arguments == {"x": Item("n", default=0)}
    assert each.retry == RetryPolicy(max_attempts=4, initial_delay=0, retry_on=("RuntimeError",))
    assert (each.timeout, each.on_error, each.when, each.max_concurrency) == (2.5, "continue", "inputs.go", 2)
    assert (each.cache, first.cache, other.cache) == (CachePolicy(version="2", ttl=60), None, False)
    assert rescue.arguments == {"value": Context("first")}
    assert (rescue.after, rescue.join) == (("each",), "any")
    assert rescue.on_error == Fallback(value={"ok": False})
    assert isinstance(other.on_error, Fallback)
    assert other.on_error.tool is toolbox.echo
    assert flow.outputs is not None
    assert flow.outputs["rescued"].default is None


def test_a_file_flow_runs(write: Write) -> None:
    path = write(
        "run.json",
        f"""\
        {{"name": "run", "steps": [
          {{"id": "d", "tool": "{TOOLBOX}:double", "map": {{"$input": "ns"}}, "arguments": {{"x": {{"$item": ""}}}}}},
          {{"id": "s", "tool": "{TOOLBOX}:add", "arguments": {{"a": {{"$ref": "d", "path": "[0]"}}, "b": 1}}}}
        ]}}
        """,
    )
    result = SyncDriver().run_blocking(load_flow_file(path, allow_modules=[TOOLBOX]), {"ns": [3, 4]})
    assert result.outputs == {"s": 7}


def test_a_module_not_on_the_allowlist_is_never_imported(write: Write) -> None:
    path = write("f.yaml", "name: f\nsteps:\n  - id: a\n    tool: tests.files.never_imported:anything\n")
    with pytest.raises(FlowFileError) as caught:
        load_flow_file(path, allow_modules=["tests.files.toolbox"])
    (problem,) = caught.value.problems
    assert isinstance(problem, FileProblem)
    assert (problem.line, problem.column) == (4, 11)
    assert "module 'tests.files.never_imported' is not allowed" in problem.message
    assert "--allow-module tests.files.never_imported" in problem.message
    assert "tests.files.never_imported" not in sys.modules


def test_a_package_on_the_allowlist_allows_its_modules_but_not_its_look_alikes(write: Write) -> None:
    path = write("f.yaml", f"name: f\nsteps:\n  - id: a\n    tool: {TOOLBOX}:double\n    arguments: {{x: 1}}\n")
    assert problems_of(path, ("tests.files",)) == []
    assert "not allowed" in problems_of(path, ("tests.file",))[0][2]
    assert "not allowed" in problems_of(path, ("tests.files.tool",))[0][2]


def test_a_plain_function_becomes_a_tool_and_other_attributes_are_refused(write: Write) -> None:
    path = write(
        "f.yaml",
        f"""\
        name: f
        steps:
          - {{id: a, tool: "{TOOLBOX}:plain", arguments: {{value: 1}}}}
          - {{id: b, tool: "{TOOLBOX}:NOT_A_TOOL"}}
          - {{id: c, tool: "{TOOLBOX}:absent"}}
          - {{id: d, tool: "not a module:x"}}
        """,
    )
    found = problems_of(path)
    assert [(line, message.split(": ", 1)[1]) for line, _, message in found] == [
        (4, f"'{TOOLBOX}:NOT_A_TOOL' is a int, not a tool or a function"),
        (5, f"module '{TOOLBOX}' has no attribute 'absent'"),
        (6, "'not a module:x' is not MODULE:ATTR"),
    ]


def test_every_problem_at_once_with_its_place(write: Write) -> None:
    path = write(
        "bad.yaml",
        f"""\
        name: bad
        stepz: []
        steps:
          - id: a
            tool: {TOOLBOX}:double
            arguments: {{x: {{$ref: nope}}}}
            retry: {{max_attempts: 0}}
          - id: b
            tool: os:system
            arguments: {{command: {{$rf: a}}}}
          - id: c
            tool: {TOOLBOX}:echo
            on_error: bogus
          - id: c
            tool: nothing.at.all
            after: [zz]
          - id: d
            tool: {TOOLBOX}:double
            arguments: {{y: 1}}
        """,
    )
    messages = problems_of(path)
    assert [(line, column) for line, column, _ in messages] == [
        (2, 8), (6, 20), (7, 27), (9, 11), (10, 26), (13, 15), (14, 9), (15, 11), (16, 13), (19, 16), (19, 20),
    ]  # fmt: skip
    text = "\n".join(message for _, _, message in messages)
    for expected in (
        "stepz: unknown field 'stepz'",
        "steps[0].arguments.x: references unknown step 'nope'",
        "steps[0].retry.max_attempts: Input should be greater than or equal to 1",
        "steps[1].tool: module 'os' is not allowed",
        "steps[1].arguments.command: a mapping with $ keys ($rf) is a source",
        "steps[2].on_error: Input should be 'fail' or 'continue'",
        "steps[3].id: duplicate step id 'c'",
        "steps[3].tool: unknown tool 'nothing.at.all'",
        "steps[3].after[0]: waits for unknown step 'zz'",
        "steps[4].arguments.y: unknown argument 'y' of tool 'double'",
        "missing required argument 'x' of tool 'double'",
    ):
        assert expected in text


def test_a_cycle_is_reported_at_a_step_of_it(write: Write) -> None:
    path = write(
        "cycle.yaml",
        f"""\
        name: cycle
        steps:
          - {{id: a, tool: "{TOOLBOX}:echo", arguments: {{value: {{$ref: b}}}}}}
          - {{id: b, tool: "{TOOLBOX}:echo", arguments: {{value: {{$ref: a}}}}}}
        """,
    )
    messages = problems_of(path)
    assert messages
    assert all(line in (3, 4) for line, _, _ in messages)
    assert "cycle" in " ".join(m for _, _, m in messages)


def test_sub_flows_by_file_by_local_name_and_by_module(write: Write) -> None:
    write(
        "parts/double.yaml",
        f"""\
        name: doubled
        steps: [{{id: d, tool: "{TOOLBOX}:double", arguments: {{x: {{$input: n}}}}}}]
        outputs: {{n: {{$ref: d}}}}
        """,
    )
    path = write(
        "main.yaml",
        f"""\
        name: main
        flows:
          twice:
            steps:
              - {{id: one, flow: {{file: parts/double.yaml}}, arguments: {{n: {{$input: n}}}}}}
              - {{id: two, flow: {{file: parts/double.yaml}}, arguments: {{n: {{$ref: one, path: n}}}}}}
            outputs: {{n: {{$ref: two, path: n}}}}
        steps:
          - {{id: four, flow: {{name: twice}}, arguments: {{n: {{$input: n}}}}}}
          - {{id: five, flow: {{name: "{TOOLBOX}:increment"}}, arguments: {{n: {{$ref: four, path: n}}}}}}
        """,
    )
    flow = load_flow_file(path, allow_modules=[TOOLBOX])
    four, five = flow.steps
    assert four.flow is not None
    assert four.flow.name == "twice"
    one, two = four.flow.steps
    assert one.flow is two.flow  # a file included twice is read once
    assert five.flow is toolbox.increment
    assert SyncDriver().run_blocking(flow, {"n": 3}).outputs == {"five": {"n": 13}}


def test_sub_flows_that_include_each_other_are_a_cycle(write: Write) -> None:
    write("a.yaml", "name: a\nsteps:\n  - {id: s, flow: {file: b.yaml}}\n")
    write("b.yaml", "name: b\nsteps:\n  - {id: s, flow: {file: a.yaml}}\n")
    path = write(
        "local.yaml",
        """\
        name: l
        flows:
          x: {steps: [{id: s, flow: {name: y}}]}
          y: {steps: [{id: s, flow: {name: x}}]}
        steps:
          - {id: s, flow: {name: x}}
        """,
    )
    files = check_flow_file(path.parent / "a.yaml")
    assert any("include each other: a.yaml -> b.yaml -> a.yaml" in p.message for p in files)
    assert any(p.file.endswith("b.yaml") and p.line == 3 for p in files)
    local = check_flow_file(path)
    assert any("run each other as sub-flows: x -> y -> x" in p.message for p in local)


def test_mcp_tools_are_named_against_the_declared_servers(write: Write) -> None:
    from flowkernel.mcp import MCPServer

    path = write(
        "mcp.yaml",
        """\
        name: clock
        servers:
          time: {command: mcp-server-time, args: [--local-timezone, UTC]}
          remote: {url: "http://127.0.0.1:1/mcp", headers: {Authorization: Bearer x}}
        steps:
          - {id: now, tool: time.get_current_time, arguments: {timezone: UTC}}
          - {id: again, tool: time.get_current_time, arguments: {timezone: {$ref: now, path: timezone}}}
          - {id: far, tool: remote.search}
        """,
    )
    flow = load_flow_file(path)
    now, again, far = flow.steps
    assert now.tool is again.tool
    assert now.tool is not None
    assert now.tool.name == "time.get_current_time"
    (server,) = now.tool.resources
    assert isinstance(server, MCPServer)
    assert (server.command, server.args) == ("mcp-server-time", ("--local-timezone", "UTC"))
    assert far.tool is not None
    assert far.tool.resources[0].headers == {"Authorization": "Bearer x"}  # type: ignore[attr-defined]
    broken = write("broken.yaml", "name: b\nservers:\n  s: {args: [x]}\nsteps:\n  - {id: a, tool: s.t}\n")
    messages = problems_of(broken)
    assert messages[0][:2] == (3, 6)
    assert "give either command= (stdio) or url=" in messages[0][2]


@pytest.fixture
def registered(tmp_path: Path) -> Iterator[None]:
    """A tool package installed the way pip installs one: a distribution with an entry point."""
    site = tmp_path / "site"
    info = site / "toolpack-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toolpack\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[flowkernel.tools]\ntoolpack.double = {TOOLBOX}:double\n\n"
        f"[flowkernel.flows]\nincrement = {TOOLBOX}:increment\n"
    )
    sys.path.insert(0, str(site))
    try:
        yield
    finally:
        sys.path.remove(str(site))


@pytest.mark.usefixtures("registered")
def test_registered_tools_and_flows_need_no_allowlist(write: Write) -> None:
    path = write(
        "f.yaml",
        """\
        name: f
        steps:
          - {id: d, tool: toolpack.double, arguments: {x: 2}}
          - {id: i, flow: {name: increment}, arguments: {n: {$ref: d}}}
          - {id: typo, tool: toolpack.doubel, arguments: {x: 2}}
        """,
    )
    (problem,) = check_flow_file(path)
    assert "did you mean 'toolpack.double'?" in problem.message
    assert problem.line == 5


def test_resources_are_named_in_allowed_modules(write: Write) -> None:
    path = write(
        "f.yaml", f"name: f\nresources: ['{TOOLBOX}:increment']\nsteps:\n  - {{id: a, tool: '{TOOLBOX}:echo'}}\n"
    )
    messages = problems_of(path)
    assert messages == [(2, 13, "resources[0]: 'tests.files.toolbox:increment' is a Flow, not a Resource")]
