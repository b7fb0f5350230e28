"""The documentation site: it builds with ``mkdocs build --strict`` (a warning, a broken link, a page left
out of the navigation or a docstring mkdocstrings cannot render fails it), its API reference holds the
public names, and the "Write your own driver" page's driver runs and passes the parity suite."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER_PAGE = ROOT / "docs" / "write-a-driver.md"


def _needs(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the docs build needs {', '.join(missing)}: pip install 'flowkernel[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``--strict``; the build's log must not hold a single warning."""
    _needs("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log
    assert not re.findall(r"^(?:WARNING|ERROR)\b.*", log, re.M), log
    return out


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text()


def test_every_docs_page_is_on_the_site(site: Path) -> None:
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert "write-a-driver" in pages
    for stem in pages:
        path = site / "index.html" if stem == "index" else site / stem / "index.html"
        assert path.is_file(), f"docs/{stem}.md is not on the site"


def test_the_api_reference_documents_the_public_names(site: Path) -> None:
    expected = {
        "reference/flowkernel": (
            "flowkernel.Flow",
            "flowkernel.Step",
            "flowkernel.model.tool.tool",
            "flowkernel.ExecutionResult",
        ),
        "reference/host": ("flowkernel.host.KernelSession", "flowkernel.host.Backend", "flowkernel.host.call_sync"),
        "reference/testing": ("flowkernel.testing.assert_parity", "flowkernel.testing.scenarios"),
        "reference/mcp": ("flowkernel.mcp.MCPServer", "flowkernel.mcp.serve.serve_flows"),
        "reference/otel": ("flowkernel.otel.Tracing",),
        "reference/drivers": ("flowkernel_sync.SyncDriver", "flowkernel_dask.DaskDriver", "flowkernel_trio.TrioDriver"),
    }
    for page, names in expected.items():
        html = _page(site, page)
        for name in names:
            assert f'id="{name}"' in html, f"{page} does not document {name}"
        assert ":class:`" not in html  # the docstrings' Sphinx roles are rendered as code


def test_the_integrations_are_linked_from_the_navigation(site: Path) -> None:
    home = (site / "index.html").read_text()
    for page in ("otel/", "mcp/", "mcp-serve/", "write-a-driver/"):
        assert f'href="{page}"' in home


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def test_the_example_on_the_home_page_runs() -> None:
    (block,) = python_blocks(ROOT / "docs" / "index.md")
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/index.md", "exec"), namespace)
    assert namespace["result"].outputs == {"summary": "<html>https:"}  # type: ignore[attr-defined]


def test_the_driver_of_the_write_a_driver_page_runs_and_passes_the_parity_suite(tmp_path: Path) -> None:
    _needs("anyio", "hypothesis")
    blocks = python_blocks(DRIVER_PAGE)
    assert len(blocks) == 3  # the driver, a run of it with every setting, the parity properties
    # Written to a module as the reader would (hypothesis reads the properties' source), then imported.
    source = tmp_path / "write_a_driver.py"
    source.write_text("\n\n".join(blocks))
    spec = importlib.util.spec_from_file_location("write_a_driver", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.result.outputs == {"receipt": "HELLO, ORDER-7 IS PAID"}
    properties = [getattr(module, name) for name in dir(module) if name.startswith("test_threads_")]
    assert len(properties) == 3
    for prove in properties:
        prove()
    _stopping_the_run_cancels_what_runs(module.ThreadDriver())


def _stopping_the_run_cancels_what_runs(driver: Any) -> None:
    """The page's driver, stopped by its caller (a listener raising) while a call hangs in a thread: the
    guard cancels the call at once and the exception carries the partial result."""
    from flowkernel import Flow, RunStatus, Step, StepStatus, tool
    from flowkernel.events import StepFinished
    from flowkernel.host import partial_result

    @tool
    def quick() -> int:
        return 1

    hold, passed = threading.Event(), threading.Event()

    @tool
    def stuck() -> int:
        hold.wait(10)
        passed.set()
        return 2

    def stop_when_quick_finishes(event: object) -> None:
        if isinstance(event, StepFinished) and event.path == "quick":
            raise KeyboardInterrupt

    flow = Flow(name="stopped", steps=[Step(id="quick", tool=quick), Step(id="stuck", tool=stuck)])
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            driver.run_blocking(flow, on_event=stop_when_quick_finishes)
        assert not passed.is_set()  # the stuck call was released, not waited for
    finally:
        hold.set()
    result = partial_result(stopped.value)
    assert result is not None
    assert result.status is RunStatus.CANCELLED
    assert {step.id: step.status for step in result.steps} == {
        "quick": StepStatus.SUCCEEDED,
        "stuck": StepStatus.CANCELLED,
    }
