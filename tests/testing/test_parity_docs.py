"""docs/parity.md: its examples run, and print what the page shows."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the parity check needs hypothesis (flowkernel[testing])")
import hypothesis

PAGE = Path(__file__).resolve().parents[2] / "docs" / "parity.md"
DOCS_HYPOTHESIS = "6.170.17"
"""The hypothesis the page's broken-driver report was made with: which flows a seed gives, and how they
shrink, is hypothesis' own choice, so another version may show another (equally minimal) flow."""


def blocks() -> list[tuple[str, str]]:
    """The page's fenced blocks, (language, text), in order."""
    return re.findall(r"```(\w+)\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)


def test_the_command_prints_what_the_page_shows() -> None:
    (console,) = [text for lang, text in blocks() if lang == "console"]
    command, *shown = console.splitlines()
    args = shlex.split(command.removeprefix("$ "))
    assert args[:2] == ["flowkernel", "parity"]
    done = subprocess.run([sys.executable, "-m", "flowkernel", *args[1:]], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == shown


def test_every_python_example_runs_and_prints_what_the_page_shows() -> None:
    found = blocks()
    namespace: dict[str, object] = {}
    outputs: list[str] = []
    for (lang, text), (next_lang, shown) in zip(found, [*found[1:], ("", "")], strict=True):
        if lang != "python":
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(text, str(PAGE), "exec"), namespace)  # the blocks build on one another
        if next_lang == "text":
            outputs.append(printed.getvalue())
            check_output(printed.getvalue(), shown)
    assert len(outputs) == 2
    namespace["test_the_sync_driver_keeps_parity"]()  # type: ignore[operator]  # the page's own test


def check_output(printed: str, shown: str) -> None:
    if not shown.startswith("parity BROKEN"):
        assert printed == shown
        return
    for text in (printed, shown):  # what any version of hypothesis must find for this driver, and the page says
        lines = text.splitlines()
        assert re.fullmatch(
            r"parity BROKEN: driver 'no-retries' against oracle and sync, \d+ examples passed, limits 1,2,none, seed 4",
            lines[0],
        )
        assert re.search(r"retry: up to \d attempts.*\n.*calls: attempt 1 fails \(ScriptedFailure\); attempt 2", text)
        assert re.search(r"no-retries \(max_concurrency=\d\) disagrees with oracle", text)
        assert "first difference at result." in text
        assert any(re.fullmatch(r"oracle\s+no-retries \(max_concurrency=\d\)", line) for line in lines)
    if hypothesis.__version__ == DOCS_HYPOTHESIS:
        assert printed == shown
