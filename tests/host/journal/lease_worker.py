"""A process for the lease tests: starts or resumes one journaled run whose calls block until told.

    python lease_worker.py JOURNAL RUN_ID start|resume CALLS_LOG

Each call appends ``<pid> <step>`` to CALLS_LOG, prints ``started <step>`` and then waits until a file
``<CALLS_LOG>.go`` exists, so the test decides when calls finish (and can SIGKILL the process while one
is in flight). Prints ``leased <message>`` and exits 3 if the run is being executed elsewhere, else
``done <status>``.

Only flowkernel and its drivers are imported here: the script runs outside the test suite's package.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from flowkernel import Flow, Input, Ref, Step, tool
from flowkernel.host import load_driver
from flowkernel.host.journal import RunLeasedError, SqliteJournal

LOG = Path(sys.argv[4]) if len(sys.argv) > 4 else Path("calls.log")


@tool
def work(n: int, step: str) -> int:
    with LOG.open("a") as log:
        log.write(f"{os.getpid()} {step}\n")
    print(f"started {step}", flush=True)
    go = LOG.with_name(LOG.name + ".go")
    while not go.exists():
        time.sleep(0.01)
    return n + 1


FLOW = Flow(
    name="leased",
    steps=[
        Step(id="a", tool=work, arguments={"n": Input("n"), "step": "a"}),
        Step(id="b", tool=work, arguments={"n": Ref("a"), "step": "b"}),
        Step(id="c", tool=work, arguments={"n": Ref("b"), "step": "c"}),
    ],
)


def main(journal: str, run_id: str, mode: str) -> int:
    driver = load_driver("sync")
    with SqliteJournal(journal, lease=float(os.environ.get("LEASE_SECONDS", "30"))) as opened:
        try:
            if mode == "start":
                result = driver.run_blocking(FLOW, {"n": 0}, journal=opened, run_id=run_id)
            else:
                result = driver.run_blocking(FLOW, journal=opened, run_id=run_id, resume=True)
        except RunLeasedError as exc:
            print(f"leased {exc}", flush=True)
            return 3
    print(f"done {result.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
