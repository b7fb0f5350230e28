"""Hygiene shared by ``tests/`` and ``property_tests/``: one test process runs them all, so what one module
leaves behind must not slow the next."""

from __future__ import annotations

import gc

import pytest


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a module's last test (its fixtures torn down): collect its garbage, then freeze what is left.

    Without this a full collection walks everything every earlier module left alive: 1.6 million objects by
    the end of ``tests/``, 0.3-0.7 s pauses that land in whichever test runs then, and one broke a timing
    test in CI. Frozen objects are never walked again; garbage a module leaves is collected here, in its
    own teardown, so a finalizer that fails (an unraisable exception) is reported against that module.
    (``gc.get_referrers`` does not see frozen objects: pyproject.toml ignores the false warning Hypothesis
    gives for it.)
    """
    if nextitem is None or nextitem.module is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()
