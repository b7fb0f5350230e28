"""The diagrams in docs/ are generated from the code and must be current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_docs_are_up_to_date() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_design_doc_shows_the_state_table_and_the_example_flow() -> None:
    text = (ROOT / "docs" / "design.md").read_text()
    assert "| backoff | the backoff timer fired and a slot is free | running |" in text
    assert "n_store --> n_report" in text


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def test_every_example_on_the_policies_page_runs() -> None:
    page = ROOT / "docs" / "policies.md"
    blocks = python_blocks(page)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:  # the blocks build on one another, like a reader's session
        exec(compile(block, str(page), "exec"), namespace)


def test_every_example_on_the_durability_page_runs() -> None:
    page = ROOT / "docs" / "durability.md"
    blocks = python_blocks(page)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    assert namespace["paid"].outputs == {"charge": "order-7/charge"}  # type: ignore[attr-defined]


def test_the_example_on_the_otel_page_runs_and_prints_the_span_tree() -> None:
    import contextlib
    import io

    import pytest

    pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")
    page = ROOT / "docs" / "otel.md"
    (block,) = python_blocks(page)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, str(page), "exec"), {})
    expected = re.search(r"```text\n(.*?)```", page.read_text(), re.S)
    assert expected is not None
    assert sorted(printed.getvalue().splitlines()) == sorted(expected.group(1).splitlines())
    assert printed.getvalue().splitlines()[0] == "flowkernel.run nightly"


def test_every_example_on_the_world_page_runs() -> None:
    page = ROOT / "docs" / "world.md"
    blocks = python_blocks(page)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    assert namespace["events_log"] == ["open counter", "open session", "close session", "close counter"]


def test_every_example_on_the_mcp_page_runs_against_the_real_time_server() -> None:
    import pytest

    pytest.importorskip("mcp", reason="the MCP page needs the mcp extra: pip install 'flowkernel[mcp]'")
    page = ROOT / "docs" / "mcp.md"
    blocks = python_blocks(page)
    assert len(blocks) == 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    assert namespace["problems"]  # the mismatch example raised, and listed its problems


def test_every_example_on_the_mcp_serve_page_runs() -> None:
    import pytest

    pytest.importorskip("mcp", reason="the mcp extra is not installed")
    page = ROOT / "docs" / "mcp-serve.md"
    blocks = python_blocks(page)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    assert namespace["names"] == ["add", "square_numbers"]
