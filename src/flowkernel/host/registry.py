"""Finding drivers by name through the ``flowkernel.drivers`` entry-point group.

Third-party drivers plug in the same way as the bundled ones: declare an entry point in that group
whose object is the driver class.

The four drivers flowkernel releases are loaded by a direct import of the class their distribution
declares (:data:`BUNDLED_DRIVERS`, the same ``module:attribute`` as their entry points; a test holds
the two together), without scanning every installed distribution's entry points: the scan costs a few
milliseconds on every ``flowkernel run`` (more with many packages installed), and the direct import
finds the same class. If the bundled module is not importable (its distribution is not installed), the
name is looked up among the entry points like any other, so a driver installed under that name is
still found, and an unknown name still gets :class:`DriverNotFoundError` naming the installed ones.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import DriverNotFoundError
from .driver import Driver

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint, EntryPoints

__all__ = ("BUNDLED_DRIVERS", "ENTRY_POINT_GROUP", "installed_drivers", "load_driver", "load_driver_class")

ENTRY_POINT_GROUP = "flowkernel.drivers"

BUNDLED_DRIVERS: dict[str, str] = {
    "sync": "flowkernel_sync:SyncDriver",
    "asyncio": "flowkernel_asyncio:AsyncioDriver",
    "trio": "flowkernel_trio:TrioDriver",
    "dask": "flowkernel_dask:DaskDriver",
}
"""The drivers flowkernel releases: name -> the ``module:attribute`` their distributions declare in
the ``flowkernel.drivers`` group (``drivers/*/pyproject.toml``)."""


def entry_points(*, group: str) -> EntryPoints:
    """:func:`importlib.metadata.entry_points`, imported when a name is looked up: a run whose driver is
    bundled does not need ``importlib.metadata`` (pydantic's plugin scan imports it, unless turned off)."""
    from importlib.metadata import entry_points as scan

    return scan(group=group)


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_drivers() -> tuple[str, ...]:
    """The names of every installed driver, sorted."""
    return tuple(sorted(_entry_points()))


def _bundled(name: str) -> type[Driver] | None:
    """The bundled driver ``name`` by a direct import; ``None`` if ``name`` is not bundled or its module
    is not installed. An import error from inside the module (a dependency missing) propagates, as it
    would from the entry point's ``load()``."""
    target = BUNDLED_DRIVERS.get(name)
    if target is None:
        return None
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            return None
        raise
    cls: type[Driver] = getattr(module, attribute)
    return cls


def load_driver_class(name: str) -> type[Driver]:
    """The driver class registered under ``name``; :class:`DriverNotFoundError` if there is none."""
    bundled = _bundled(name)
    if bundled is not None:
        return bundled
    found = _entry_points().get(name)
    if found is None:
        raise DriverNotFoundError(name, installed_drivers())
    cls: type[Driver] = found.load()
    return cls


def load_driver(name: str, **options: Any) -> Driver:
    """An instance of the driver registered under ``name``, built with ``options``."""
    return load_driver_class(name)(**options)
