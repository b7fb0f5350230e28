"""Fixtures shared by the driver tests (plain helpers are in :mod:`tests.drivers.support`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Release


@pytest.fixture
def release() -> Iterator[Release]:
    """Blocking sync tools wait on this (with a timeout); set at teardown, so no abandoned thread outlives the
    test. ``release.passed`` tells whether a tool got past it."""
    event = Release()
    yield event
    event.set()
