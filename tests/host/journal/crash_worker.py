"""A worker process for the crash test: runs one journaled flow, to be killed with SIGKILL at any moment.

    python crash_worker.py JOURNAL LOG RUN_ID [--resume] [--driver NAME]
    python crash_worker.py --gate [--driver NAME]      # then, on stdin: JOURNAL LOG RUN_ID [--resume]

Every tool appends ``"<pid> <call id>"`` to LOG when it *starts* executing (one ``write`` per line in
append mode, fsynced), so the test knows which process ran which call. When the run finishes, the worker
prints ``result <canonical result as JSON>`` on stdout.

With ``--gate`` the worker starts up (imports, builds the flow), prints ``ready`` and reads the rest of
its arguments from one line of stdin before it touches the journal (EOF: exit without running). The
test keeps a few gated workers waiting, so interpreter start-up overlaps the runs and kill points are
not lost in it.

Only flowkernel and its drivers are imported here: the script runs outside the test suite's package.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any

from flowkernel import Flow, Input, Item, Ref, Step, tool
from flowkernel.host import current_invoke, load_driver
from flowkernel.host.journal import SqliteJournal

INPUTS = {"size": 8}
MAX_CONCURRENCY = 4
CHAIN = 12
FAN = 12

_log_path: str | None = None


def _log_start() -> None:
    """Append this call's id to the execution log, durably, before doing any work."""
    if _log_path is None:
        return
    line = f"{os.getpid()} {current_invoke().call_id}\n".encode()
    fd = os.open(_log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of a short line: never torn by a kill
        os.fsync(fd)
    finally:
        os.close(fd)


def _work(salt: int) -> None:
    """A few milliseconds of work, so kills land while calls are in flight."""
    time.sleep(0.001 * (2 + salt % 4))


@tool
def make_items(size: int) -> list[int]:
    _log_start()
    _work(0)
    return list(range(1, size + 1))


@tool
def mix(value: int, salt: int) -> int:
    _log_start()
    _work(salt)
    return (value * 31 + salt) % 1_000_003


@tool
def square(x: int) -> int:
    _log_start()
    _work(x)
    return x * x


@tool
def combine(chain: int, fan: list[int], mapped: list[int]) -> dict[str, Any]:
    _log_start()
    return {"chain": chain, "fan": sum(fan), "mapped": sum(mapped)}


@tool
def publish(summary: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    _log_start()
    _work(1)
    return {"summary": summary, "key": idempotency_key}


def build_flow(log_path: str | None) -> Flow:
    """The crash test's flow: a chain of ``CHAIN`` steps beside a fan-out of ``FAN`` steps and a map step
    (``size`` elements), joined, then a step with an idempotency key. The tools log to ``log_path``."""
    global _log_path
    _log_path = log_path
    steps = [Step(id="source", tool=make_items, arguments={"size": Input("size")})]
    previous: Any = Ref("source", "length(@)")
    for k in range(CHAIN):
        steps.append(Step(id=f"c{k:02}", tool=mix, arguments={"value": previous, "salt": k}))
        previous = Ref(f"c{k:02}")
    for k in range(FAN):
        steps.append(Step(id=f"f{k:02}", tool=mix, arguments={"value": Ref("source", f"[{k % 8}]"), "salt": k + 7}))
    steps.append(Step(id="mapped", tool=square, map=Ref("source"), arguments={"x": Item()}))
    steps.append(
        Step(
            id="gather",
            tool=combine,
            arguments={"chain": previous, "fan": [Ref(f"f{k:02}") for k in range(FAN)], "mapped": Ref("mapped")},
        )
    )
    steps.append(Step(id="publish", tool=publish, arguments={"summary": Ref("gather")}))
    return Flow(name="crash-test", version="1", steps=steps)


def main(argv: list[str]) -> int:
    if "--gate" in argv:  # start up first (imports, the flow's models), then read the run's arguments
        argv = [arg for arg in argv if arg != "--gate"]
        load_driver(argv[argv.index("--driver") + 1] if "--driver" in argv else "sync")
        build_flow(None)
        print("ready", flush=True)
        line = sys.stdin.readline()
        if not line.strip():
            return 3
        argv += shlex.split(line)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal")
    parser.add_argument("log")
    parser.add_argument("run_id")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--driver", default="sync")
    args = parser.parse_args(argv)
    flow = build_flow(args.log)
    driver = load_driver(args.driver)
    journal = SqliteJournal(args.journal)
    settings: dict[str, Any] = {"journal": journal, "run_id": args.run_id}
    if args.resume:
        result = driver.run_blocking(flow, resume=True, **settings)
    else:
        result = driver.run_blocking(flow, INPUTS, max_concurrency=MAX_CONCURRENCY, **settings)
    journal.close()
    print("result", json.dumps(result.canonical(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
