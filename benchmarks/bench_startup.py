"""Benchmark 11: start-up, what a user waits for before anything runs.

Three commands, **each sample a fresh process** (``subprocess.run``, wall time from the parent, so the
interpreter's own start-up is inside every figure):

* ``python -c pass``: the baseline, the interpreter alone;
* ``python -c "import flowkernel"``: the package's import;
* ``flowkernel run ONE.py:flow``: the command line (the console script's own code, run with ``-c``) running
  a flow of one trivial step from a file, printing the result table to a pipe (not a terminal, so no live
  display; the table is still rendered).

The commands run round by round, the order rotated every round, so drift on a shared machine hits all
three alike; a warm-up round first (bytecode caches, the page cache). Figures are medians over rounds with
their spread (lowest-highest sample); a ratio to the baseline is taken round by round and its median
reported. Children inherit this process's environment (``PYTHONPATH`` included), so they import the same
flowkernel as the caller.

**Bytecode is cached**, as in an installed package (pip compiles it): the children write and read it
under a temporary ``PYTHONPYCACHEPREFIX`` (never beside the sources), even when ``PYTHONDONTWRITEBYTECODE``
is set, as it is in this repository's sessions. Without the cache every flowkernel module is compiled
from source in every process, which measures the compiler, not the start-up a user sees.

    python benchmarks/bench_startup.py [ROUNDS]   # this benchmark alone, its table on stdout
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _harness import Config, Row, format_table, log, median

NAME = "startup"

IMPORT_TARGET_MS = 100.0
"""``import flowkernel``: at most 100 ms (issue 12)."""
RUN_TARGET_MS = 200.0
"""``flowkernel run`` of a one-step flow: at most 200 ms (issue 12)."""

ONE_STEP_FLOW = """\
from flowkernel import Flow, Step, tool


@tool
def hello(name: str) -> str:
    return f"hello {name}"


flow = Flow(name="one", steps=[Step(id="hello", tool=hello, arguments={"name": "world"})])
"""
CONSOLE_SCRIPT = "import sys; from flowkernel.cli import main; sys.exit(main())"
"""What the installed ``flowkernel`` script runs (pip's entry-point wrapper, less its ``argv[0]`` fix-up)."""


def commands(flow_file: Path) -> dict[str, list[str]]:
    """The three commands by name, the baseline first."""
    python = sys.executable
    return {
        "pass": [python, "-c", "pass"],
        "import": [python, "-c", "import flowkernel"],
        "run": [python, "-c", CONSOLE_SCRIPT, "run", f"{flow_file}:flow"],
    }


def child_environment(pycache: Path) -> dict[str, str]:
    """This process's environment, with bytecode written to and read from ``pycache``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def sample(command: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    """One fresh process: its wall time in milliseconds (it must exit 0)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=120)
    elapsed = (time.perf_counter() - started) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:]} exited {done.returncode}: {done.stderr.decode()[-1000:]}")
    return elapsed


def measure(rounds: int) -> dict[str, list[float]]:
    """``rounds`` samples of each command, interleaved, the order rotated from round to round."""
    with tempfile.TemporaryDirectory(prefix="fk-startup-") as tmp:
        cwd = Path(tmp)
        flow_file = cwd / "one_step.py"
        flow_file.write_text(ONE_STEP_FLOW, encoding="utf-8")
        env = child_environment(cwd / "pycache")
        by_name = commands(flow_file)
        names = list(by_name)
        for name in names:  # warm-up: bytecode written, files in the page cache
            sample(by_name[name], cwd, env)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(sample(by_name[name], cwd, env))
    return samples


def rows(samples: dict[str, list[float]]) -> list[Row]:
    """The table: the baseline (informational), then each command against its target."""
    base = samples["pass"]
    out = [
        Row("start-up: python -c pass (baseline)", median(base), None, "ms", None,
            f"spread {min(base):.0f}-{max(base):.0f}", "", None, samples={"pass": base}),
    ]  # fmt: skip
    for name, label, target in (
        ("import", "start-up: import flowkernel", IMPORT_TARGET_MS),
        ("run", "start-up: flowkernel run, 1-step flow", RUN_TARGET_MS),
    ):
        values = samples[name]
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        measured = median(values)
        out.append(
            Row(
                label, measured, median(base), "ms", median(ratios),
                f"{measured:.0f} ms (spread {min(values):.0f}-{max(values):.0f}); "
                f"{measured - median(base):.0f} ms over bare Python",
                f"<= {target:.0f} ms", measured <= target,
                samples={name: values, "pass": base, "ratios": ratios},
            )
        )  # fmt: skip
    return out


def run(config: Config) -> list[Row]:
    rounds = 2 if config.quick else 3 * config.repeats
    log(f"startup: python -c pass, import flowkernel, flowkernel run (1 step); {rounds} fresh processes each")
    return rows(measure(rounds))


if __name__ == "__main__":
    print(format_table(rows(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 21))))
