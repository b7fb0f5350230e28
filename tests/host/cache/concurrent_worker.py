"""One of several processes running cached flows against one cache file at once (see test_concurrency).

Usage: python -m tests.host.cache.concurrent_worker CACHE LOG ROUNDS
Prints one JSON line: every run's status and outputs, and how many calls the cache served.
"""

from __future__ import annotations

import json
import sys

from flowkernel import Flow, Input, Item, Step
from flowkernel.host import load_driver
from flowkernel.host.cache import StepCache

from .flows import square

KEYS = list(range(20))


def main(cache_path: str, log: str, rounds: int) -> None:
    flow = Flow(
        name="squares", steps=[Step(id="each", tool=square, map=Input("keys"), arguments={"x": Item(), "log": log})]
    )
    driver = load_driver("sync")
    runs: list[list[object]] = []
    served = 0
    with StepCache(cache_path, timeout=60) as cache:
        for _ in range(rounds):
            result = driver.run_blocking(flow, {"keys": KEYS}, cache=cache, max_concurrency=4)
            elements = result.step("each").subflow
            served += 0 if elements is None else sum(a.cached for s in elements.steps for a in s.attempts)
            runs.append([str(result.status), result.outputs, [str(e) for e in result.errors]])
    report = {"runs": runs, "served": served}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
