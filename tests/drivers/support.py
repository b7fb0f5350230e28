"""Helpers shared by the driver tests: bounded runs (a thread or an event loop that fails the test instead of
hanging), a concurrency gauge, and the small tools, exceptions and flows several driver tests use."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from flowkernel import Flow, Ref, Step, tool

T = TypeVar("T")
TIMEOUT = 5.0
VIRTUAL_TIMEOUT = 10_000.0


class Release(threading.Event):
    """What blocking sync tools wait on, set at the test's teardown so no abandoned thread outlives the test.

    ``passed`` is set once any wait on it has ended: a run that returned while ``passed`` is unset did not
    wait for its blocked tool, which holds however slow the machine is (an elapsed-time bound does not).
    """

    def __init__(self) -> None:
        super().__init__()
        self.passed = threading.Event()

    def wait(self, timeout: float | None = TIMEOUT) -> bool:
        try:
            return super().wait(timeout)
        finally:
            self.passed.set()


def in_thread(fn: Callable[[], T], timeout: float = TIMEOUT) -> T:
    """Call ``fn`` in a daemon thread; fail (instead of hanging) if it does not return in time."""
    outcome: list[tuple[str, Any]] = []

    def target() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:  # handed back to the test thread
            outcome.append(("err", exc))

    thread = threading.Thread(target=target, daemon=True, name="test-caller")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        gc.collect()  # run finalizers of the broken run now, not in the middle of pytest's report
        pytest.fail(f"the run did not finish within {timeout} s (it hangs)", pytrace=False)
    kind, value = outcome[0]
    if kind == "err":
        raise value
    return value  # type: ignore[no-any-return]


def arun(fn: Callable[[], Awaitable[T]], timeout: float = TIMEOUT) -> T:
    """Run ``fn()`` in a fresh asyncio loop, failing instead of hanging after ``timeout`` seconds."""

    async def main() -> T:
        async with asyncio.timeout(timeout):
            return await fn()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt as exc:  # never let it reach pytest, which would stop the whole session
        escaped = repr(exc)
    # Collect the broken run's tasks now: their finalizers log tracebacks, and CPython 3.11 fails with
    # "AST constructor recursion depth mismatch" if that happens inside pytest's own ast.parse.
    gc.collect()
    pytest.fail(f"KeyboardInterrupt escaped the run: {escaped}", pytrace=False)


def trun(fn: Callable[[], Awaitable[T]], *, mock_clock: bool = False) -> T:
    """Run ``fn()`` in a new trio run, failing instead of hanging; ``mock_clock`` makes time virtual.

    With the mock clock, time jumps ahead whenever every task is blocked, so a generous virtual deadline
    still fails a hanging run at once.

    The trio tests import trio with ``pytest.importorskip``; it is imported here, not for the whole module, so
    the tests of the other drivers run without it.
    """
    import trio
    import trio.testing

    async def main() -> T:
        with trio.fail_after(VIRTUAL_TIMEOUT if mock_clock else TIMEOUT):
            return await fn()

    clock = trio.testing.MockClock(autojump_threshold=0) if mock_clock else None
    try:
        return trio.run(main, clock=clock)
    except BaseException as exc:
        interrupts = exc.subgroup(KeyboardInterrupt) if isinstance(exc, BaseExceptionGroup) else None
        if not isinstance(exc, KeyboardInterrupt) and interrupts is None:
            raise
        escaped = repr(exc)  # never let a KeyboardInterrupt reach pytest: it would stop the whole session
    gc.collect()
    pytest.fail(f"KeyboardInterrupt escaped the run: {escaped}", pytrace=False)


class Gauge:
    """Counts how many tools are inside at once (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.now = 0
        self.peak = 0
        self.total = 0

    def __enter__(self) -> None:
        with self._cond:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)
            self._cond.notify_all()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self.now -= 1

    def wait_for_peak(self, target: int, timeout: float = 2.0) -> None:
        """Block (a worker thread) until ``target`` tools have been inside at once, or the timeout passes.

        Makes "the limit is reached" independent of thread start-up latency, without sleeping long.
        """
        with self._cond:
            self._cond.wait_for(lambda: self.peak >= target, timeout)


class CustomError(Exception):
    pass


class Abort(BaseException):
    """A BaseException that is not KeyboardInterrupt/SystemExit (like gevent's GreenletExit)."""


class Point(BaseModel):
    x: int
    y: int


# What a raising tool raises, with the error type and message its failed step must report.
TOOL_ERRORS: list[tuple[BaseException, str, str]] = [
    (ValueError("bad value"), "ValueError", "bad value"),
    (CustomError("custom"), f"{__name__}.CustomError", "custom"),
    (SystemExit(3), "SystemExit", "3"),
]


@tool
def ok() -> str:
    return "fine"


@tool
def after(v: Any) -> Any:
    return v


def raising(exc: BaseException, *, is_async: bool, sleep: Callable[[float], Awaitable[object]] | None = None) -> Any:
    """A tool named ``boom`` that raises ``exc``; the async one first awaits ``sleep(0)`` if given (the loop's
    own checkpoint, so the exception is raised after a real suspension)."""
    if is_async:

        async def boom() -> None:
            if sleep is not None:
                await sleep(0)
            raise exc

        return tool(name="boom")(boom)

    def boom_sync() -> None:
        raise exc

    return tool(name="boom")(boom_sync)


def failing_flow(boom: Any, *, indirect: bool = False) -> Flow:
    """``bad`` runs ``boom``, ``dependent`` reads it (and ``indirect``, if asked for, reads ``dependent``);
    ``good`` and ``good2`` are an independent branch."""
    return Flow(
        name="f",
        steps=[
            Step(id="bad", tool=boom),
            Step(id="good", tool=ok),
            Step(id="dependent", tool=after, arguments={"v": Ref("bad")}),
            *([Step(id="indirect", tool=after, arguments={"v": Ref("dependent")})] if indirect else []),
            Step(id="good2", tool=after, arguments={"v": Ref("good")}),
        ],
    )
