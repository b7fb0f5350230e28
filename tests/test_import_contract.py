"""The kernel stays pure: no kernel module imports I/O, clocks, randomness, threads or event loops,
directly or through another flowkernel module (the host layer, the CLI and the testing kit may)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

FORBIDDEN = frozenset(
    {"asyncio", "trio", "anyio", "threading", "time", "random", "os", "socket", "concurrent", "sqlite3", "subprocess"}
)
# Not kernel: these layers do I/O on purpose.
HOST_LAYERS = (
    "flowkernel.host",
    "flowkernel.testing",
    "flowkernel.cli",
    "flowkernel.__main__",
    "flowkernel.otel",
    "flowkernel.mcp",
    "flowkernel.files",  # reads flow files and imports the modules the user allows
)
SRC = Path(__file__).resolve().parents[1] / "src"


def module_path(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imports_of(root: Path, name: str) -> set[str]:
    """Every module ``name`` imports (also inside functions and TYPE_CHECKING blocks), made absolute."""
    path = module_path(root, name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(
                f"{module}.{alias.name}" for alias in node.names if module_path(root, f"{module}.{alias.name}")
            )
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "__import__",
            "import_module",
        ):
            found.add("<dynamic import>")
    return found


def violations(root: Path, start: str, top: str = "flowkernel") -> list[str]:
    """Chains ``a -> b -> forbidden`` from ``start`` through modules of package ``top``."""
    problems: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
    while stack:
        name, chain = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)]
        for imported in sorted(imports_of(root, name) | set(parents)):
            head = imported.split(".")[0]
            if head in FORBIDDEN or imported == "<dynamic import>":
                problems.append(" -> ".join((*chain, imported)))
            elif head == top and module_path(root, imported) is not None:
                if imported.startswith(HOST_LAYERS) and top == "flowkernel":
                    problems.append(" -> ".join((*chain, imported)))
                else:
                    stack.append((imported, (*chain, imported)))
    return problems


def kernel_modules() -> list[str]:
    names = []
    for path in sorted((SRC / "flowkernel").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        if not name.startswith(HOST_LAYERS):
            names.append(name)
    return names


def test_the_kernel_covers_the_model_protocol_results_and_the_generator() -> None:
    names = kernel_modules()
    for expected in ("flowkernel", "flowkernel.kernel.run", "flowkernel.model.flow", "flowkernel.protocol"):
        assert expected in names
    assert not any(name.startswith(HOST_LAYERS) for name in names)


@pytest.mark.parametrize("module", kernel_modules())
def test_kernel_module_is_pure(module: str) -> None:
    assert violations(SRC, module) == []


def test_the_checker_catches_a_forbidden_import_two_modules_away(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("from . import helper\n")
    (package / "helper.py").write_text("def f():\n    import time\n    return time.time()\n")
    (package / "clean.py").write_text("import json\n")
    assert violations(tmp_path, "pkg.core", top="pkg") == ["pkg.core -> pkg.helper -> time"]
    assert violations(tmp_path, "pkg.clean", top="pkg") == []


def test_importing_the_kernel_loads_no_host_module() -> None:
    import subprocess

    code = "import flowkernel.kernel, sys; print(sorted(m for m in sys.modules if m.startswith('flowkernel.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "flowkernel.host" not in loaded
    assert "flowkernel.testing" not in loaded
