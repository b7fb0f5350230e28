"""Start-up stays cheap: what ``import flowkernel`` and ``flowkernel run`` load (issue 12; no timing here,
``benchmarks/bench_startup.py`` times it). Each check runs in a fresh interpreter, so nothing this test
process already imported can hide a module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import flowkernel
from flowkernel.host import journal

SRC = Path(__file__).resolve().parents[1] / "src" / "flowkernel"

HEAVY = ("sqlite3", "asyncio", "rich", "click", "pydantic", "jmespath", "mcp", "opentelemetry", "trio", "anyio")
"""Nothing of these is needed to import the package itself."""
NOT_FOR_A_PLAIN_RUN = (
    "sqlite3",
    "asyncio",
    "rich.live",
    "rich.progress",
    "rich.pretty",  # outputs that fit on a line print without it
    "attr",  # rich.pretty imports attrs when it is installed
    "rich._emoji_codes",  # titles are text, not markup with :emoji: codes
    "mcp",
    "opentelemetry",
    "trio",
    "anyio",
    "dask",
)
"""What ``flowkernel run`` of a flow of sync tools, without a journal, printing to a pipe, never needs."""

ONE_STEP_FLOW = """\
from flowkernel import Flow, Step, tool


@tool
def hello(name: str) -> str:
    return f"hello {name}"


flow = Flow(name="one", steps=[Step(id="hello", tool=hello, arguments={"name": "world"})])
"""


def loaded_after(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code`` (which may exit)."""
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n" + code
    )
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def present(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)]


def test_import_flowkernel_loads_nothing_heavy() -> None:
    assert present(loaded_after("import flowkernel"), HEAVY) == []


def test_a_plain_cli_run_loads_no_journal_event_loop_or_live_display(tmp_path: Path) -> None:
    (tmp_path / "one_step.py").write_text(ONE_STEP_FLOW, encoding="utf-8")
    modules = loaded_after("from flowkernel.cli import main; main()", "run", f"{tmp_path / 'one_step.py'}:flow")
    assert "flowkernel_sync" in modules  # it did run
    assert present(modules, NOT_FOR_A_PLAIN_RUN) == []


@pytest.mark.parametrize(
    "command", [("run", "FLOW", "--json"), ("run", "FLOW", "--quiet", "--json"), ("graph", "FLOW"), ("schema",)]
)
def test_commands_that_print_no_table_load_no_rich_console(tmp_path: Path, command: tuple[str, ...]) -> None:
    """rich is imported where a table or the live display is printed; JSON, Mermaid and a schema need none
    of it (the command line only checks that rich is installed: ``import rich``, its tiny package)."""
    (tmp_path / "one_step.py").write_text(ONE_STEP_FLOW, encoding="utf-8")
    args = [f"{tmp_path / 'one_step.py'}:flow" if arg == "FLOW" else arg for arg in command]
    modules = loaded_after("from flowkernel.cli import main; main()", *args)
    assert sorted(m for m in modules if m.startswith("rich.")) == ["rich._extension"]


def test_the_sync_driver_loads_asyncio_only_for_an_async_tool() -> None:
    code = (
        "from flowkernel import Flow, Step, tool\n"
        "from flowkernel_sync import SyncDriver\n"
        "@tool\n"
        "def plain(): return 1\n"
        "result = SyncDriver().run(Flow(name='f', steps=[Step(id='s', tool=plain)]))\n"
        "assert result.status == 'succeeded', result\n"
        "import sys; assert 'asyncio' not in sys.modules\n"
        "@tool\n"
        "async def nap(): return 2\n"
        "result = SyncDriver().run(Flow(name='g', steps=[Step(id='s', tool=nap)]))\n"
        "assert result.outputs == {'s': 2}, result\n"
    )
    assert "asyncio" in loaded_after(code)


def test_the_journal_package_loads_sqlite_on_first_use() -> None:
    assert "sqlite3" not in loaded_after("from flowkernel.host.journal import open_run, replay")
    assert "sqlite3" in loaded_after("from flowkernel.host.journal import SqliteJournal")


def type_checking_names(path: Path) -> set[str]:
    """The names a module imports inside its ``if TYPE_CHECKING:`` block (what type checkers see)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.level:  # the package's own names
                    names.update(alias.asname or alias.name for alias in statement.names)
    return names


@pytest.mark.parametrize(
    ("package", "path", "lazy"),
    [
        (flowkernel, SRC / "__init__.py", set(flowkernel.__all__)),
        (journal, SRC / "host" / "journal" / "__init__.py", {"Codec", "Durability", "SqliteJournal"}),
    ],
)
def test_lazy_names_are_what_type_checkers_see_and_all_resolve(package: ModuleType, path: Path, lazy: set[str]) -> None:
    """The names loaded on first use (PEP 562) match the ``TYPE_CHECKING`` imports, and each resolves."""
    assert type_checking_names(path) == lazy
    exported = set(package.__all__)
    assert lazy <= exported
    for name in exported:
        assert getattr(package, name) is not None
    assert exported <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def test_star_import_and_submodules_still_work() -> None:
    code = (
        "from flowkernel import *\n"
        "import flowkernel\n"
        "assert Flow is flowkernel.model.Flow and ProtocolError is flowkernel.errors.ProtocolError\n"
        "assert run_flow is flowkernel.kernel.run_flow\n"
    )
    loaded_after(code)
