"""The daemon thread pools and the process-wide cache of idle threads they share."""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

import pytest

from flowkernel.host import DaemonThreadPool, ThreadCall

WAIT = 10.0
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class Calls:
    """Runs ``fn`` for each call and records what happened, in any thread."""

    def __init__(self, fn: Callable[[Any], Any] = lambda arg: arg) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.results: dict[Any, Any] = {}
        self.threads: dict[Any, int] = {}
        self.done = threading.Semaphore(0)

    def __call__(self, arg: Any) -> None:
        try:
            result = self.fn(arg)
        finally:
            with self.lock:
                self.threads[arg] = threading.get_ident()
            self.done.release()
        self.results[arg] = result

    def wait(self, n: int) -> None:
        for _ in range(n):
            assert self.done.acquire(timeout=WAIT), "a call never ran"


def start(pool: DaemonThreadPool, calls: Calls, arg: Any) -> ThreadCall:
    call = ThreadCall(pool, calls, arg)
    pool.start(call)
    return call


def test_calls_run_in_named_daemon_threads_in_a_copy_of_the_starters_contextvars() -> None:
    def look(arg: str) -> tuple[str, str, bool]:
        before = seen.get()
        seen.set(arg)  # stays in this call
        thread = threading.current_thread()
        return before, thread.name, thread.daemon

    pool, calls = DaemonThreadPool(2), Calls(look)
    token = seen.set("caller")
    try:
        for arg in ("a", "b", "c"):
            start(pool, calls, arg)
        calls.wait(3)
    finally:
        seen.reset(token)
    assert sorted(calls.results.values()) == [("caller", "flowkernel-tool", True)] * 3


def test_at_most_max_workers_calls_run_at_once_and_every_call_runs() -> None:
    running, peak, gate = [0], [0], threading.Event()
    lock = threading.Lock()

    def busy(arg: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(WAIT)
        with lock:
            running[0] -= 1
        return arg

    pool, calls = DaemonThreadPool(2), Calls(busy)
    for arg in range(6):
        start(pool, calls, arg)
    deadline = time.monotonic() + WAIT
    while running[0] < 2 and time.monotonic() < deadline:  # two run at once, held at the gate
        time.sleep(0.01)
    time.sleep(0.1)  # room for a third, were the limit not kept
    gate.set()
    calls.wait(6)
    assert peak[0] == 2
    assert sorted(calls.results) == list(range(6))


def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    gate = threading.Event()
    pool, calls = DaemonThreadPool(1), Calls(lambda arg: gate.wait(WAIT) if arg == "first" else arg)
    start(pool, calls, "first")
    second = start(pool, calls, "second")
    assert second.cancel() is True
    third = start(pool, calls, "third")
    gate.set()
    calls.wait(2)
    pool.shutdown(wait=True)
    assert sorted(calls.results) == ["first", "third"]
    assert third.cancel() is False  # it ran: nothing to cancel, and the pool does not grow


def test_an_abandoned_call_gives_the_pool_a_thread_until_it_returns() -> None:
    stuck, gate = threading.Event(), threading.Event()

    def work(arg: str) -> str:
        if arg == "stuck":
            stuck.set()
            gate.wait(WAIT)
        return arg

    pool, calls = DaemonThreadPool(1), Calls(work)
    abandoned = start(pool, calls, "stuck")
    assert stuck.wait(WAIT)
    assert abandoned.cancel() is False  # running: cannot be stopped, so the pool may start one more
    start(pool, calls, "next")
    calls.wait(1)  # ran beside the stuck call
    assert calls.results == {"next": "next"}
    gate.set()
    calls.wait(1)
    pool.shutdown(wait=True)
    assert pool._max_workers == 1  # the extra thread was only while the abandoned call ran


def test_threads_go_back_to_the_cache_and_the_next_pool_reuses_them() -> None:
    first, later = Calls(), Calls()
    pool = DaemonThreadPool(1)
    start(pool, first, 1)
    first.wait(1)
    pool.shutdown(wait=True)
    alive = {thread.ident for thread in threading.enumerate()}
    for arg in range(3):
        again = DaemonThreadPool(1)
        start(again, later, arg)
        later.wait(1)
        again.shutdown(wait=True)
    assert {thread.ident for thread in threading.enumerate()} <= alive  # no thread started (an idle one may leave)
    assert set(later.threads.values()) == set(first.threads.values())  # the first pool's thread, each time


def test_each_pool_has_its_own_limit_so_a_call_waiting_on_another_pool_does_not_deadlock() -> None:
    inner_pool, inner = DaemonThreadPool(1), Calls(lambda arg: arg * 2)

    def outer_call(arg: int) -> int:  # a tool that runs a flow: its calls need threads too
        start(inner_pool, inner, arg)
        inner.wait(1)
        return int(inner.results[arg])

    outer_pool, outer = DaemonThreadPool(1), Calls(outer_call)
    start(outer_pool, outer, 21)
    outer.wait(1)
    assert outer.results == {21: 42}


def test_submit_settles_a_future_and_shutdown_cancels_those_not_started() -> None:
    running, gate = threading.Event(), threading.Event()
    pool = DaemonThreadPool(1)
    blocker = pool.submit(lambda: running.set() or gate.wait(WAIT))
    assert running.wait(WAIT)
    waiting = pool.submit(lambda: "never")
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert blocker.result(WAIT) is True
    with pytest.raises(CancelledError):
        waiting.result(WAIT)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)
    failing = DaemonThreadPool(1).submit(int, "x")
    with pytest.raises(ValueError, match="invalid literal"):
        failing.result(WAIT)


def test_a_call_that_raises_is_reported_as_unraisable_and_its_thread_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def boom(arg: int) -> None:
        raise ValueError(f"boom {arg}")

    pool = DaemonThreadPool(1)
    pool.start(ThreadCall(pool, boom, 1))
    calls = Calls()
    start(pool, calls, "after")
    calls.wait(1)
    assert [str(args.exc_value) for args in reported] == ["boom 1"]
    assert reported[0].err_msg == "Exception in a flowkernel pool call"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_threads_of_its_own() -> None:
    warm, calls = DaemonThreadPool(1), Calls()
    start(warm, calls, 1)
    calls.wait(1)
    warm.shutdown(wait=True)  # the parent now has an idle cached thread, which the child has not
    pid = os.fork()
    if pid == 0:  # the child: a pool call must run, or the wait times out
        child = Calls()
        start(DaemonThreadPool(1), child, 2)
        os._exit(0 if child.done.acquire(timeout=WAIT) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
