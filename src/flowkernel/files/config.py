"""The allowlist from the project's configuration: which modules flow files may name as ``MODULE:ATTR``.

Read from the working directory upwards: the first ``flowkernel.toml`` (``allow-modules = [...]`` at its
top) or ``pyproject.toml`` with a ``[tool.flowkernel]`` table (``allow-modules = [...]``). Never from
beside the flow file: whoever wrote the file does not decide what it may import; the user running it does.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ("CONFIG_KEY", "ConfigError", "configured_allow_modules")

CONFIG_KEY = "allow-modules"


def configured_allow_modules(start: Path | None = None) -> tuple[str, ...]:
    """The modules the nearest configuration allows (none without one), looking up from ``start``
    (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        own = directory / "flowkernel.toml"
        if own.is_file():
            return _modules(own, _read(own))
        project = directory / "pyproject.toml"
        if project.is_file():
            table = _read(project).get("tool", {}).get("flowkernel")
            if isinstance(table, dict):
                return _modules(project, table)
    return ()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _modules(path: Path, table: dict[str, Any]) -> tuple[str, ...]:
    modules = table.get(CONFIG_KEY, [])
    if not isinstance(modules, list) or not all(
        isinstance(m, str) and m and all(p.isidentifier() for p in m.split(".")) for m in modules
    ):
        raise ConfigError(f"{path}: {CONFIG_KEY} must be a list of module names, got {modules!r}")
    return tuple(modules)
