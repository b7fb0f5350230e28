"""docs/pictures.md: its Python examples run, its commands work, its pictures are there."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "pictures.md"


def test_every_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 2
    namespace: dict[str, object] = {}
    for block in blocks:  # the second uses the first's flow, like a reader's session
        exec(compile(block, str(PAGE), "exec"), namespace)


def test_every_command_runs(tmp_path: Path) -> None:
    commands = re.findall(r"^\$ flowkernel (.*)$", PAGE.read_text(), re.M)
    assert len(commands) == 4
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the page's paths, from a directory of its own
    for command in commands:
        line = f"{shlex.quote(sys.executable)} -m flowkernel {command}"
        done = subprocess.run(line, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    for name in ("first.svg", "graph.svg"):
        assert ET.parse(tmp_path / name).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert (tmp_path / "first.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "report" / "report.md").is_file()  # the run wrote where the page said


def test_the_pictures_it_shows_exist() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text())
    assert shown == ["images/corpus_report_timeline.svg", "images/corpus_report_graph.svg"]
    for image in shown:
        assert ET.parse(PAGE.parent / image).getroot().tag == "{http://www.w3.org/2000/svg}svg"
