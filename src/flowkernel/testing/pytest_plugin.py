"""pytest plugin (auto-loaded through the ``pytest11`` entry point): run a test on every driver.

A test that takes the ``flowkernel_driver`` fixture runs once per driver: the bundled ones (skipped,
not dropped, with the reason when one is not installed, as anyio's plugin does for its backends) and
any third-party driver registered in the ``flowkernel.drivers`` entry-point group.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import DriverNotFoundError
from ..host.driver import Driver
from ..host.registry import installed_drivers, load_driver

__all__ = ("BUNDLED_DRIVERS", "flowkernel_driver", "pytest_generate_tests")

BUNDLED_DRIVERS = ("sync", "asyncio", "trio", "dask")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``flowkernel_driver`` over every known driver name."""
    if "flowkernel_driver" in metafunc.fixturenames:
        names = sorted(set(BUNDLED_DRIVERS) | set(installed_drivers()))
        metafunc.parametrize("flowkernel_driver", names, indirect=True)


@pytest.fixture
def flowkernel_driver(request: pytest.FixtureRequest) -> Driver:
    """A driver instance, once per driver; skipped with the reason when that driver is not installed."""
    name: Any = getattr(request, "param", "sync")
    try:
        return load_driver(name)
    except DriverNotFoundError:
        pytest.skip(f"driver {name!r} is not installed (pip install flowkernel-{name})")
    except ImportError as exc:
        pytest.skip(f"driver {name!r} cannot be imported: {exc}")
