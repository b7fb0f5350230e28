"""The parity suite as a library: scripted tools, scenario strategies, the oracle, the parity harness.

``scenarios`` needs hypothesis (``pip install 'flowkernel[testing]'``); the rest does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cached import assert_cached_parity, cached_attempts, cached_scenario
from .events import assert_event_parity, kernel_events, runs_in_sequence
from .oracle import oracle_result
from .parity import DEFAULT_LIMITS, ParityError, assert_calls_within_limits, assert_parity, run_canonical
from .replay import assert_replay_parity
from .scripted import CallGauge, Scenario, Script, ScriptedFailure, ScriptedOutput, scripted_tool

if TYPE_CHECKING:
    from .strategies import scenarios

__all__ = (
    "DEFAULT_LIMITS",
    "CallGauge",
    "ParityError",
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
    "kernel_events",
    "oracle_result",
    "run_canonical",
    "runs_in_sequence",
    "scenarios",
    "scripted_tool",
)


def __getattr__(name: str) -> Any:
    """Import the hypothesis-based strategies only when they are used."""
    if name != "scenarios":
        raise AttributeError(f"module 'flowkernel.testing' has no attribute {name!r}")
    from .strategies import scenarios

    return scenarios
