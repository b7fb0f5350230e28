"""Finding drivers by name through the ``flowkernel.drivers`` entry-point group.

Third-party drivers plug in the same way as the bundled ones: declare an entry point in that group
whose object is the driver class.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ..errors import DriverNotFoundError
from .driver import Driver

__all__ = ("ENTRY_POINT_GROUP", "installed_drivers", "load_driver", "load_driver_class")

ENTRY_POINT_GROUP = "flowkernel.drivers"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_drivers() -> tuple[str, ...]:
    """The names of every installed driver, sorted."""
    return tuple(sorted(_entry_points()))


def load_driver_class(name: str) -> type[Driver]:
    """The driver class registered under ``name``; :class:`DriverNotFoundError` if there is none."""
    found = _entry_points().get(name)
    if found is None:
        raise DriverNotFoundError(name, installed_drivers())
    cls: type[Driver] = found.load()
    return cls


def load_driver(name: str, **options: Any) -> Driver:
    """An instance of the driver registered under ``name``, built with ``options``."""
    return load_driver_class(name)(**options)
