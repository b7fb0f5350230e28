"""Finding drivers by name through the ``flowkernel.drivers`` entry-point group."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint
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
