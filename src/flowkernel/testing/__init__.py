"""The parity suite as a library: scripted tools, scenario strategies, the oracle, the parity harness,
and :func:`check_driver`, which proves a driver in one call (what ``flowkernel parity`` runs).

``scenarios`` and ``check_driver`` need hypothesis (``pip install 'flowkernel[testing]'``); the rest
does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cached import assert_cached_parity, cached_attempts, cached_scenario
from .describe import describe_scenario
from .events import assert_event_parity, kernel_events, runs_in_sequence
from .oracle import oracle_result
from .parity import (
    DEFAULT_LIMITS,
    Divergence,
    ParityError,
    assert_calls_within_limits,
    assert_parity,
    find_divergence,
    first_difference,
    run_canonical,
)
from .replay import assert_replay_parity
from .scripted import CallGauge, Scenario, Script, ScriptedFailure, ScriptedOutput, scripted_tool

if TYPE_CHECKING:
    from .check import ParityFailure, ParityReport, check_driver
    from .strategies import scenarios

__all__ = (
    "DEFAULT_LIMITS",
    "CallGauge",
    "Divergence",
    "ParityError",
    "ParityFailure",
    "ParityReport",
    "Scenario",
    "Script",
    "ScriptedFailure",
    "ScriptedOutput",
    "assert_cached_parity",
    "assert_calls_within_limits",
    "assert_event_parity",
    "assert_parity",
    "assert_replay_parity",
    "cached_attempts",
    "cached_scenario",
    "check_driver",
    "describe_scenario",
    "find_divergence",
    "first_difference",
    "kernel_events",
    "oracle_result",
    "run_canonical",
    "runs_in_sequence",
    "scenarios",
    "scripted_tool",
)


_NEED_HYPOTHESIS = {
    "scenarios": "strategies",
    "check_driver": "check",
    "ParityReport": "check",
    "ParityFailure": "check",
}


def __getattr__(name: str) -> Any:
    """Import what needs hypothesis (the strategies, the driver check) only when it is used."""
    module = _NEED_HYPOTHESIS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowkernel.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
