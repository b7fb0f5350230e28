"""Shared by the flow-file tests: writing files, and the test toolbox's allowlist."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLBOX = "tests.files.toolbox"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write a file (text dedented) under the test's directory; returns its path."""

    def write_file(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write_file
