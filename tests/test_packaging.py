"""Release-grade packaging: every sdist and wheel is built here, checked for its licence and metadata, and
the wheels are installed into a fresh virtual environment whose console script runs the example flow.

Building needs hatchling and the fresh environment needs pydantic & co.: both come from the package
index (PyPI), as for any user; the flowkernel distributions themselves come only from the wheels built
here (``--find-links``), which the test checks by comparing the installed source with this tree's.
"""

from __future__ import annotations

import email
import email.message
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("sync", "asyncio", "trio", "dask")
LICENSE = (ROOT / "LICENSE").read_text()


@dataclass(frozen=True)
class Distribution:
    """One distribution of the repository: where its project lives and what it is called."""

    name: str  # the distribution name, e.g. flowkernel-sync
    project: Path  # the directory holding its pyproject.toml
    package: str  # the import package, e.g. flowkernel_sync

    @property
    def version(self) -> str:
        """The version in the package's ``__version__``: the single source hatch reads."""
        source = (self.project / "src" / self.package / "__init__.py").read_text()
        found = re.search(r'^__version__ = "([^"]+)"$', source, re.M)
        assert found is not None, f"{self.package}/__init__.py has no __version__"
        return found.group(1)

    @property
    def stem(self) -> str:
        return f"{self.package}-{self.version}"


CORE = Distribution("flowkernel", ROOT, "flowkernel")
DISTRIBUTIONS = (CORE, *(Distribution(f"flowkernel-{d}", ROOT / "drivers" / d, f"flowkernel_{d}") for d in DRIVERS))


def _uv() -> str:
    uv = pytest.importorskip("uv", reason="the uv package (requirements-dev.txt) builds and installs here")
    return str(uv.find_uv_bin())


def _clean_env() -> dict[str, str]:
    """The environment without this session's interpreter settings: the fresh venv must see only itself."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def _run(*command: str | Path, cwd: Path | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=_clean_env(), timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every sdist and wheel, each wheel built from its sdist (so the sdist is known to be complete)."""
    out = tmp_path_factory.mktemp("dist")
    uv = _uv()
    for distribution in DISTRIBUTIONS:
        _run(uv, "build", "--quiet", "--out-dir", out, distribution.project)
    return out


def _wheel(dist_dir: Path, distribution: Distribution) -> Path:
    return dist_dir / f"{distribution.stem}-py3-none-any.whl"


def _sdist(dist_dir: Path, distribution: Distribution) -> Path:
    return dist_dir / f"{distribution.stem}.tar.gz"


def _wheel_metadata(dist_dir: Path, distribution: Distribution) -> email.message.Message:
    with zipfile.ZipFile(_wheel(dist_dir, distribution)) as wheel:
        return email.message_from_string(wheel.read(f"{distribution.stem}.dist-info/METADATA").decode())


@pytest.mark.parametrize("distribution", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_wheel_and_sdist_carries_the_license_and_full_metadata(
    dist_dir: Path, distribution: Distribution
) -> None:
    with zipfile.ZipFile(_wheel(dist_dir, distribution)) as wheel:
        assert wheel.read(f"{distribution.stem}.dist-info/licenses/LICENSE").decode() == LICENSE
        assert f"{distribution.package}/py.typed" in wheel.namelist()
    with tarfile.open(_sdist(dist_dir, distribution)) as sdist:
        member = sdist.extractfile(f"{distribution.stem}/LICENSE")
        assert member is not None
        assert member.read().decode() == LICENSE
        pkg_info = sdist.extractfile(f"{distribution.stem}/PKG-INFO")
        assert pkg_info is not None
        sdist_metadata = email.message_from_string(pkg_info.read().decode())

    for metadata in (_wheel_metadata(dist_dir, distribution), sdist_metadata):
        assert metadata["Name"] == distribution.name
        assert metadata["Version"] == distribution.version
        assert metadata["License-Expression"] == "MIT"
        assert metadata["License-File"] == "LICENSE"
        assert metadata["Requires-Python"] == ">=3.11"
        assert metadata["Summary"]
        assert metadata["Description-Content-Type"] == "text/markdown"
        readme = (distribution.project / "README.md").read_text()
        assert metadata.get_payload().strip() == readme.strip()  # the long description is the README
        classifiers = metadata.get_all("Classifier") or []
        assert "Programming Language :: Python :: 3.11" in classifiers
        assert "Typing :: Typed" in classifiers
        assert not [c for c in classifiers if c.startswith("License ::")]  # the licence expression says it
        urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
        assert {"Homepage", "Repository", "Issues", "Changelog", "Documentation"} <= set(urls)


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_driver_needs_a_compatible_range_of_the_core(dist_dir: Path, driver: str) -> None:
    distribution = next(d for d in DISTRIBUTIONS if d.name == f"flowkernel-{driver}")
    requirements = [Requirement(r) for r in _wheel_metadata(dist_dir, distribution).get_all("Requires-Dist") or []]
    core = Version(CORE.version)
    next_minor = Version(f"{core.major}.{core.minor + 1}")
    for required in (r for r in requirements if r.name.startswith("flowkernel")):
        assert required.specifier.contains(core if required.name == "flowkernel" else Version(distribution.version))
        assert not required.specifier.contains(next_minor), f"{driver}: {required} admits {next_minor}"
    assert "flowkernel" in {r.name for r in requirements}
    assert distribution.version == CORE.version  # the drivers are released with the core


def test_the_core_extras_name_every_driver_and_the_summary_says_where_they_come_from(dist_dir: Path) -> None:
    metadata = _wheel_metadata(dist_dir, CORE)
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {*DRIVERS, "all", "cli"} <= extras
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]

    def needed_by(extra: str) -> set[str]:
        return {r.name for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})}

    for driver in DRIVERS:
        assert {f"flowkernel-{driver}", "click", "rich"} <= needed_by(driver)  # the driver and the CLI
    assert {f"flowkernel-{d}" for d in DRIVERS} | {"click", "mcp", "opentelemetry-api"} <= needed_by("all")
    summary = metadata["Summary"]
    for driver in DRIVERS:
        assert re.search(driver, summary, re.I), f"the summary does not name the {driver} driver"
    assert "separate distributions" in summary


def _fresh_venv(where: Path) -> Path:
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, where)
    return where / "bin" / "python"


def _install(python: Path, dist_dir: Path, *requirements: str) -> None:
    _run(_uv(), "pip", "install", "--quiet", "--python", python, "--find-links", dist_dir, *requirements)


def _run_example(venv: Path, out: Path, driver: str) -> None:
    """The installed console script runs the example flow, from outside the source tree."""
    example = ROOT / "examples" / "corpus_report.py"
    out.mkdir()
    printed = _run(
        venv / "bin" / "flowkernel", "run", f"{example}:flow", "--driver", driver, "--input", f"out={out}", cwd=out
    )
    assert "succeeded" in printed  # (the command exits 0 only if the run succeeded)
    report = (out / "report.md").read_text()
    assert "bread" in report  # a word of examples/data/corpus/bakery.txt made it into the report
    assert (out / "corpus.sqlite").stat().st_size > 0


def test_the_wheels_in_a_fresh_venv_run_the_example_flow(dist_dir: Path, tmp_path: Path) -> None:
    fresh_venv = tmp_path / "env"
    python = _fresh_venv(fresh_venv)
    version = CORE.version
    # The sync extra: the core, its command line and the sync driver. The example's own tools use anyio.
    _install(python, dist_dir, f"flowkernel[sync]=={version}", "anyio")
    flowkernel = fresh_venv / "bin" / "flowkernel"
    assert _run(flowkernel, "drivers").split() == ["sync"]
    assert version in _run(flowkernel, "--version")
    installed = _run(python, "-c", "import flowkernel, flowkernel_sync; print(flowkernel.__file__)", cwd=tmp_path)
    installed_core = Path(installed.strip())
    assert installed_core.is_relative_to(fresh_venv)  # not this source tree
    assert installed_core.read_text() == (ROOT / "src" / "flowkernel" / "__init__.py").read_text()  # our build
    _run_example(fresh_venv, tmp_path / "sync-out", "sync")
    missing = subprocess.run(
        [
            fresh_venv / "bin" / "flowkernel",
            "run",
            f"{ROOT / 'examples' / 'corpus_report.py'}:flow",
            "--driver",
            "trio",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
    )
    assert missing.returncode == 2
    assert 'pip install "flowkernel[trio]"' in missing.stderr  # the extra that brings the missing driver

    # Everything: every driver, the CLI, MCP, OpenTelemetry.
    _install(python, dist_dir, f"flowkernel[all]=={version}")
    assert _run(flowkernel, "drivers").split() == sorted(DRIVERS)
    for driver in ("trio", "dask"):
        _run_example(fresh_venv, tmp_path / f"{driver}-out", driver)
    _run(python, "-c", "import flowkernel.mcp, flowkernel.otel, mcp, opentelemetry.trace", cwd=tmp_path)


def test_the_readme_first_command_installs_every_driver_it_mentions() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```console\n(.*?)```", readme, re.S)
    assert first is not None
    command = first.group(1)
    intro = readme[: first.start()]
    for driver in DRIVERS:
        if re.search(rf"\b{driver}\b", intro, re.I):
            assert f"./drivers/{driver}" in command, f"the README mentions {driver} but its first command omits it"


def test_the_changelog_has_a_dated_section_for_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.M)
    assert sections[0] == ("Unreleased", "")
    released = dict(sections[1:])
    assert released.get(CORE.version), f"CHANGELOG.md has no dated section for {CORE.version}"
