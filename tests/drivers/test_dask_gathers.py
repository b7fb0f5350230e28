"""The Dask backend's batched result fetch: calls that finished together cost one ``client.gather``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from distributed import Client, Future

from flowkernel_dask import DaskDriver
from flowkernel_dask.backend import _Gathers

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def dask() -> Iterator[DaskDriver]:
    with DaskDriver() as driver:
        yield driver


def on_loop(dask: DaskDriver, coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(coroutine, dask.loop).result(timeout=TIMEOUT)


class CountingClient:
    """The real client, with every ``gather`` it is asked for recorded (the keys of each)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.gathered: list[set[str]] = []

    def gather(self, futures: dict[str, Future[Any]], errors: str) -> Any:
        self.gathered.append(set(futures))
        return self.client.gather(futures, errors=errors)


def double(x: int) -> int:
    return 2 * x


def fail(x: int) -> int:
    raise ValueError(f"no {x}")


async def finished(futures: list[Future[Any]]) -> list[Future[Any]]:
    for future in futures:
        await future.exception()  # waits for the task to end
    return futures


def test_calls_that_finished_together_are_fetched_with_one_gather(dask: DaskDriver) -> None:
    async def scenario() -> tuple[list[int], list[set[str]]]:
        counting = CountingClient(dask.client)
        gathers = _Gathers(counting)  # type: ignore[arg-type]  # the counting stand-in has the one method used
        futures = await finished(dask.client.map(double, range(8), pure=False))
        values = await asyncio.gather(*(gathers.result(future) for future in futures))
        return values, counting.gathered

    values, gathered = on_loop(dask, scenario())
    assert values == [2 * x for x in range(8)]
    assert len(gathered) == 1
    assert len(gathered[0]) == 8


def test_a_cancelled_caller_leaves_the_others_their_results_and_the_client_working(dask: DaskDriver) -> None:
    async def scenario() -> tuple[list[int], int]:
        gathers = _Gathers(dask.client)
        futures = await finished(dask.client.map(double, range(3), pure=False))
        callers = [asyncio.ensure_future(gathers.result(future)) for future in futures]
        await asyncio.sleep(0)  # every caller joined the batch; its gather starts on the next turn
        callers[1].cancel()
        values = [await callers[0], await callers[2]]
        assert callers[1].cancelled()
        later = await dask.client.submit(double, 21, pure=False)  # the client still fetches results
        return values, later

    assert on_loop(dask, scenario()) == ([0, 4], 42)


def test_a_failed_task_raises_its_error_and_the_batch_goes_on(dask: DaskDriver) -> None:
    async def scenario() -> list[Any]:
        gathers = _Gathers(dask.client)
        futures = await finished([dask.client.submit(fail, 1, pure=False), dask.client.submit(double, 5, pure=False)])
        return await asyncio.gather(*(gathers.result(future) for future in futures), return_exceptions=True)

    error, value = on_loop(dask, scenario())
    assert isinstance(error, ValueError)
    assert str(error) == "no 1"
    assert value == 10
