"""Fixtures shared by the driver tests (plain helpers are in :mod:`tests.drivers.support`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Blocking sync tools wait on this (with a timeout); set at teardown, so no abandoned thread outlives the
    test."""
    event = threading.Event()
    yield event
    event.set()
