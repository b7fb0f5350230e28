"""A process for the concurrency test: several runs at once, in threads, into one SQLite journal.

    python concurrent_worker.py JOURNAL PREFIX COUNT

Starts up, prints ``ready``, waits for a line on stdin (so two processes can start writing at the same
moment), then runs COUNT runs (ids ``PREFIX0``...) in threads with the sync driver, each opening the
journal itself, and prints ``<run id> <canonical result as JSON>`` for each.

Only flowkernel and its drivers are imported here: the script runs outside the test suite's package.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from flowkernel import ExecutionResult, Flow, Input, Item, Ref, Step, tool
from flowkernel.host import load_driver
from flowkernel.host.journal import SqliteJournal

FAN = 6


@tool
def source(n: int) -> list[int]:
    return list(range(n, n + 4))


@tool
def scale(values: list[int], factor: int) -> int:
    time.sleep(0.001)  # long enough for runs to interleave their writes
    return sum(values) * factor


@tool
def square(x: int) -> int:
    return x * x


@tool
def total(parts: list[int], squares: list[int]) -> dict[str, int]:
    return {"parts": sum(parts), "squares": sum(squares)}


def build_flow() -> Flow:
    """A source, a fan-out of ``FAN`` steps beside a map step, and a join: 9 steps, 14 calls."""
    return Flow(
        name="concurrent",
        steps=[
            Step(id="source", tool=source, arguments={"n": Input("n")}),
            *(Step(id=f"f{k}", tool=scale, arguments={"values": Ref("source"), "factor": k}) for k in range(FAN)),
            Step(id="squares", tool=square, map=Ref("source"), arguments={"x": Item()}),
            Step(
                id="total",
                tool=total,
                arguments={"parts": [Ref(f"f{k}") for k in range(FAN)], "squares": Ref("squares")},
            ),
        ],
    )


def main(journal: str, prefix: str, count: int) -> None:
    flow = build_flow()
    driver = load_driver("sync")
    results: dict[str, ExecutionResult] = {}
    failures: list[BaseException] = []

    def run(k: int) -> None:
        try:
            with SqliteJournal(journal) as opened:
                run_id = f"{prefix}{k}"
                settings: dict[str, Any] = {"journal": opened, "run_id": run_id, "max_concurrency": 3}
                results[run_id] = driver.run_blocking(flow, {"n": k}, **settings)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    print("ready", flush=True)
    sys.stdin.readline()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    for run_id, result in sorted(results.items()):
        print(run_id, json.dumps(result.canonical(), sort_keys=True), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
