"""Finding drivers by name through the ``flowkernel.drivers`` entry-point group."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from flowkernel import DriverNotFoundError, ExecutionResult, Flow, Step, tool
from flowkernel.host import ENTRY_POINT_GROUP, Driver, installed_drivers, load_driver, load_driver_class, registry

BUNDLED = ("asyncio", "sync", "trio")


class FakeDriver:
    """A third-party driver, plugged in through an entry point."""

    name = "fake"

    def __init__(self, *, flavour: str = "plain") -> None:
        self.flavour = flavour

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
    ) -> ExecutionResult:
        from flowkernel_sync import SyncDriver

        return SyncDriver().run(flow, inputs, run_id=run_id, max_concurrency=max_concurrency)


@pytest.fixture
def with_fake_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.entry_points

    def entry_points(*, group: str) -> list[EntryPoint]:
        found = list(real(group=group))
        if group == ENTRY_POINT_GROUP:
            found.append(EntryPoint(name="fake", value=f"{__name__}:FakeDriver", group=ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(registry, "entry_points", entry_points)


def test_bundled_drivers_are_installed() -> None:
    assert ENTRY_POINT_GROUP == "flowkernel.drivers"
    names = installed_drivers()
    assert names == tuple(sorted(names))
    for name in BUNDLED:
        assert name in names


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_drivers_load_by_name(name: str) -> None:
    if name == "trio":
        pytest.importorskip("trio")
    cls = load_driver_class(name)
    driver = load_driver(name)
    assert isinstance(driver, cls)
    assert isinstance(driver, Driver)
    assert driver.name == name


def test_load_driver_passes_options() -> None:
    driver = load_driver("asyncio", sync_tools="inline")
    assert driver.sync_tools == "inline"  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        load_driver("sync", no_such_option=True)


def test_an_unknown_driver_names_the_installed_ones() -> None:
    with pytest.raises(DriverNotFoundError) as excinfo:
        load_driver("nope")
    error = excinfo.value
    assert error.name == "nope"
    assert error.installed == installed_drivers()
    for name in BUNDLED:
        assert name in str(error)
    assert "'nope'" in str(error)
    with pytest.raises(DriverNotFoundError):
        load_driver_class("nope")


@pytest.mark.usefixtures("with_fake_driver")
def test_a_third_party_driver_is_found_by_name() -> None:
    assert "fake" in installed_drivers()
    assert load_driver_class("fake") is FakeDriver
    driver = load_driver("fake", flavour="spicy")
    assert isinstance(driver, FakeDriver)
    assert driver.flavour == "spicy"
    assert isinstance(driver, Driver)

    @tool
    def hello() -> str:
        return "hi"

    result = driver.run_blocking(Flow(name="f", steps=[Step(id="h", tool=hello)]), run_id="r1")
    assert result.outputs == {"h": "hi"}
    assert result.run_id == "r1"


def test_the_fake_driver_is_gone_without_its_entry_point() -> None:
    assert "fake" not in installed_drivers()
    with pytest.raises(DriverNotFoundError) as excinfo:
        load_driver("fake")
    assert "fake" not in excinfo.value.installed


def test_the_bundled_drivers_are_the_classes_their_distributions_declare() -> None:
    """:data:`registry.BUNDLED_DRIVERS` (loaded by a direct import) says what the drivers' entry points say."""
    import tomllib

    from flowkernel.errors import _BUNDLED_DRIVERS

    declared: dict[str, str] = {}
    for project in sorted((Path(__file__).resolve().parents[2] / "drivers").glob("*/pyproject.toml")):
        points = tomllib.loads(project.read_text(encoding="utf-8"))["project"]["entry-points"]
        declared.update(points[ENTRY_POINT_GROUP])
    assert declared == registry.BUNDLED_DRIVERS
    assert frozenset(declared) == _BUNDLED_DRIVERS


@pytest.fixture
def no_entry_point_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def entry_points(*, group: str) -> list[EntryPoint]:
        raise AssertionError(f"scanned the entry points of {group}")

    monkeypatch.setattr(registry, "entry_points", entry_points)


@pytest.mark.usefixtures("no_entry_point_scan")
def test_a_bundled_driver_loads_without_scanning_every_entry_point() -> None:
    from flowkernel_sync import SyncDriver

    assert load_driver_class("sync") is SyncDriver
    assert isinstance(load_driver("asyncio"), load_driver_class("asyncio"))


def test_a_bundled_name_whose_module_is_missing_is_looked_up_among_the_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if flowkernel-asyncio were not installed, and another distribution registered a driver as
    ``asyncio``: that one is found; without it, the name is unknown."""
    monkeypatch.setitem(sys.modules, "flowkernel_asyncio", None)  # importing it raises ModuleNotFoundError
    registered = [EntryPoint(name="asyncio", value=f"{__name__}:FakeDriver", group=ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda *, group: registered if group == ENTRY_POINT_GROUP else [])
    assert load_driver_class("asyncio") is FakeDriver
    registered.clear()
    with pytest.raises(DriverNotFoundError) as excinfo:
        load_driver("asyncio")
    assert excinfo.value.installed == ()


def test_a_bundled_driver_whose_dependency_is_missing_raises_that_import_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "halfinstalled.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BUNDLED_DRIVERS, "half", "halfinstalled:Driver")
    with pytest.raises(ModuleNotFoundError) as excinfo:
        load_driver("half")
    assert excinfo.value.name == "no_such_dependency_xyz"
