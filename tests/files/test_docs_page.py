"""Every example on docs/flow-files.md runs: the page's files are written out, its Python blocks run,
and each command in its console blocks runs for real and prints the lines the page shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "flow-files.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(kind: str) -> list[str]:
    return [body for language, body in FENCE.findall(PAGE.read_text()) if language == kind]


@pytest.fixture
def page_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's module and flow files, written where its commands run."""
    for block in blocks("python") + blocks("yaml"):
        first = block.splitlines()[0]
        name = first.removeprefix("# file: ").removeprefix("# ")
        if name.endswith((".py", ".yaml")):
            (tmp_path / name).write_text(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_page_shows_files_and_commands() -> None:
    assert len(blocks("yaml")) >= 4
    assert len(blocks("console")) >= 4


def test_every_flow_file_on_the_page_validates_except_the_broken_one(page_files: Path) -> None:
    from flowkernel.files import check_flow_file

    for path in sorted(page_files.glob("*.yaml")):
        problems = check_flow_file(path, allow_modules=["mytools"])
        assert bool(problems) == (path.name == "broken.yaml"), (path.name, problems)


def test_the_python_examples_run(page_files: Path) -> None:
    for block in blocks("python"):
        if not block.startswith("# mytools.py"):
            exec(compile(block, str(PAGE), "exec"), {})
    assert (page_files / "written.yaml").is_file()


def commands() -> list[tuple[str, list[str]]]:
    found = []
    for block in blocks("console"):
        for chunk in block.split("$ ")[1:]:
            command, *shown = chunk.strip().splitlines()
            found.append((command, shown))
    return found


@pytest.mark.parametrize(("command", "shown"), commands(), ids=[c for c, _ in commands()])
def test_every_command_on_the_page_prints_what_the_page_shows(page_files: Path, command: str, shown: list[str]) -> None:
    words = shlex.split(command)
    assert words[0] == "flowkernel"
    in_repository = any(word.startswith("examples/") for word in words)
    if in_repository:
        pytest.importorskip("mcp", reason="the example calls mcp-server-time: pip install 'flowkernel[mcp,examples]'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(page_files), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "flowkernel", *words[1:]],
        capture_output=True, text=True, timeout=120, check=False, env=env,
        cwd=ROOT if in_repository else page_files,
    )  # fmt: skip
    output = done.stdout + done.stderr
    failing = "validate broken.yaml" in command
    assert done.returncode == (2 if failing else 0), output
    for line in shown:
        assert line in output, f"{line!r} not in:\n{output}"
