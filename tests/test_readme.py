"""The README's "bring your own I/O" loop, run as written against flows with timers and cancellations."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowkernel import (
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Item,
    Ref,
    RetryPolicy,
    RunStatus,
    Step,
    StepStatus,
    tool,
)
from flowkernel_sync import SyncDriver

README = Path(__file__).resolve().parents[1] / "README.md"
RunByHand = Callable[[Flow, dict[str, Any], str], ExecutionResult]


@pytest.fixture(scope="module")
def run_by_hand() -> RunByHand:
    """The README's loop, from the README's own code block (which must run, and whose run must succeed)."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "kernel.send(" in b]
    assert len(blocks) == 1, "the README shows one hand-written loop"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["result"].status is RunStatus.SUCCEEDED
    loop: RunByHand = namespace["run_by_hand"]
    return loop


calls: Counter[str] = Counter()
keys: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    calls.clear()
    keys.clear()


@tool(retry=RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.5))
def flaky(url: str) -> str:
    """Fails twice for each url, then answers."""
    calls[url] += 1
    if calls[url] < 3:
        raise ConnectionError(f"attempt {calls[url]} at {url} failed")
    return f"page of {url}"


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.01), timeout=0.05)
def slow_once(url: str) -> str:
    """Outlasts its timeout on the first attempt, answers at once on the second."""
    calls["slow:" + url] += 1
    if calls["slow:" + url] == 1:
        time.sleep(0.15)
    return url.upper()


@tool(timeout=0.05)
def always_slow(url: str) -> str:
    time.sleep(0.1)
    return url


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
def charge(url: str, idempotency_key: str) -> str:
    keys.append(idempotency_key)
    if len(keys) == 1:
        raise ConnectionError("the first charge times out on the wire")
    return f"charged {url}"


@tool
def join(parts: list[str]) -> str:
    return " | ".join(parts)


def timers_flow() -> Flow:
    return Flow(
        name="timers",
        steps=[
            Step(id="fetch", tool=flaky, arguments={"url": Input("url")}),  # backoff timers
            Step(id="slow", tool=slow_once, arguments={"url": Input("url")}),  # a timeout, then a retry
            Step(id="each", tool=flaky, map=Input("mirrors"), arguments={"url": Item()}),  # timers in a child run
            Step(id="pay", tool=charge, arguments={"url": Ref("fetch")}),  # an idempotency key
            Step(id="all", tool=join, arguments={"parts": [Ref("fetch"), Ref("slow"), Ref("pay")]}),
        ],
    )


INPUTS = {"url": "a.org", "mirrors": ["b.org", "c.org"]}


def test_the_readme_loop_runs_retries_timeouts_and_idempotency_keys_like_a_driver(run_by_hand: RunByHand) -> None:
    by_hand = run_by_hand(timers_flow(), INPUTS, "r1")  # broke on the first StartTimer (c.tool.fn)
    assert by_hand.status is RunStatus.SUCCEEDED, by_hand.errors
    assert by_hand.outputs == {
        "each": ["page of b.org", "page of c.org"],
        "all": "page of a.org | A.ORG | charged page of a.org",
    }
    assert [a.status.value for a in by_hand.step("fetch").attempts] == ["failed", "failed", "succeeded"]
    assert all(a.retry_in is not None and a.retry_in > 0 for a in by_hand.step("fetch").attempts[:2])
    first = by_hand.step("slow").attempts[0].error
    assert first is not None
    assert first.kind is ErrorKind.TIMEOUT
    assert keys == ["r1/pay", "r1/pay"]  # the step's key, the same on the retry (the README did not add it)

    calls.clear()
    keys.clear()
    by_driver = SyncDriver().run(timers_flow(), INPUTS, run_id="r1")
    assert by_hand.canonical() == by_driver.canonical()
    assert keys == ["r1/pay", "r1/pay"]


def test_a_call_that_always_outlasts_its_timeout_fails_the_step(run_by_hand: RunByHand) -> None:
    flow = Flow(
        name="timeout",
        steps=[
            Step(id="slow", tool=always_slow, arguments={"url": Input("url")}),
            Step(id="other", tool=join, arguments={"parts": ["x"]}),
        ],
    )
    result = run_by_hand(flow, {"url": "a.org"}, "r2")
    assert result.status is RunStatus.FAILED
    assert result.step("slow").status is StepStatus.FAILED
    error = result.step("slow").error
    assert error is not None
    assert (error.kind, error.message) == (ErrorKind.TIMEOUT, "attempt 1 timed out after 0.05 s")
    assert result.step("other").output == "x"
    assert result.canonical() == SyncDriver().run(flow, {"url": "a.org"}, run_id="r2").canonical()


def test_the_readmes_flow_file_is_valid(tmp_path: Path) -> None:
    """The README's YAML flow checks clean (validate starts no MCP server) and names the MCP tool it shows."""
    from flowkernel.files import check_flow_file, load_flow_file

    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if b.startswith("# clock.yaml")]
    assert len(blocks) == 1
    path = tmp_path / "clock.yaml"
    path.write_text(blocks[0])
    assert check_flow_file(path) == []
    flow = load_flow_file(path)
    assert [(step.id, step.tool.name if step.tool else None) for step in flow.steps] == [
        ("now", "time.get_current_time")
    ]
