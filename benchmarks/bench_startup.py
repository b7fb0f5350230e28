"""Benchmark 11: start-up, what a user waits for before anything runs.

Five commands, **each sample a fresh process** (wall time from the parent, so the interpreter's own
start-up is inside every figure; the child's CPU time, user + system, from ``wait4``, beside it):

* ``python -c pass``: the baseline, the interpreter alone;
* ``python -c "import flowkernel"``: the package's import;
* ``python ONE.py``: the flow file alone (``from flowkernel import Flow, Step, tool``, pydantic and the
  model, and building the flow), informational: the floor under any command that loads this flow;
* ``flowkernel run ONE.py:flow``: the command line (the console script's own code, run with ``-c``) running
  a flow of one trivial step from a file, printing the result table to a pipe (not a terminal, so no live
  display; the table is still rendered);
* ``flowkernel run ONE.py:flow --json``: the same, printing JSON (no rich), informational.

The commands run round by round, the order rotated every round, so drift on a shared machine hits all
alike; a warm-up round first (bytecode caches, the page cache). Figures are medians over rounds with
their spread (lowest-highest sample); a ratio to the baseline is taken round by round and its median
reported. CPU time is the steadier figure on a busy machine (it leaves out the time a child waits for a
core). Children inherit this process's environment (``PYTHONPATH`` included), so they import the same
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
    """The commands by name, the baseline first."""
    python = sys.executable
    return {
        "pass": [python, "-c", "pass"],
        "import": [python, "-c", "import flowkernel"],
        "flow": [python, str(flow_file)],
        "run": [python, "-c", CONSOLE_SCRIPT, "run", f"{flow_file}:flow"],
        "json": [python, "-c", CONSOLE_SCRIPT, "run", f"{flow_file}:flow", "--json"],
    }


def child_environment(pycache: Path) -> dict[str, str]:
    """This process's environment, with bytecode written to and read from ``pycache``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def sample(command: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """One fresh process: its wall time and its CPU time (user + system) in milliseconds (it must exit 0)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = (time.perf_counter() - started) * 1e3
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{command[1:]} exited {child.returncode}: {err.read().decode()[-1000:]}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1e3


def measure(rounds: int) -> dict[str, list[float]]:
    """``rounds`` samples of each command, interleaved, the order rotated from round to round: wall times
    under each command's name, CPU times under ``NAME_cpu``."""
    with tempfile.TemporaryDirectory(prefix="fk-startup-") as tmp:
        cwd = Path(tmp)
        flow_file = cwd / "one_step.py"
        flow_file.write_text(ONE_STEP_FLOW, encoding="utf-8")
        env = child_environment(cwd / "pycache")
        by_name = commands(flow_file)
        names = list(by_name)
        for name in names:  # warm-up: bytecode written, files in the page cache
            sample(by_name[name], cwd, env)
        samples: dict[str, list[float]] = {key: [] for name in names for key in (name, f"{name}_cpu")}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                wall, cpu = sample(by_name[name], cwd, env)
                samples[name].append(wall)
                samples[f"{name}_cpu"].append(cpu)
    return samples


def rows(samples: dict[str, list[float]]) -> list[Row]:
    """The table: the baseline (informational), then each command, against its target if it has one."""
    base, base_cpu = samples["pass"], samples["pass_cpu"]
    out = [
        Row("start-up: python -c pass (baseline)", median(base), None, "ms", None,
            f"spread {min(base):.0f}-{max(base):.0f}; CPU {median(base_cpu):.0f} ms", "", None,
            samples={"pass": base, "pass_cpu": base_cpu}),
    ]  # fmt: skip
    for name, label, target in (
        ("import", "start-up: import flowkernel", IMPORT_TARGET_MS),
        ("flow", "start-up: python ONE.py, the flow file alone (the floor)", None),
        ("run", "start-up: flowkernel run, 1-step flow", RUN_TARGET_MS),
        ("json", "start-up: flowkernel run --json, 1-step flow", None),
    ):
        values, cpu = samples[name], samples[f"{name}_cpu"]
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        measured = median(values)
        out.append(
            Row(
                label, measured, median(base), "ms", median(ratios),
                f"{measured:.0f} ms (spread {min(values):.0f}-{max(values):.0f}); "
                f"{measured - median(base):.0f} ms over bare Python; CPU {median(cpu):.0f} ms "
                f"(spread {min(cpu):.0f}-{max(cpu):.0f})",
                "" if target is None else f"<= {target:.0f} ms", None if target is None else measured <= target,
                samples={name: values, f"{name}_cpu": cpu, "pass": base, "ratios": ratios},
            )
        )  # fmt: skip
    return out


def run(config: Config) -> list[Row]:
    rounds = 2 if config.quick else 3 * config.repeats
    log(f"startup: python -c pass, import flowkernel, the flow file, flowkernel run (table, JSON); {rounds} each")
    return rows(measure(rounds))


if __name__ == "__main__":
    print(format_table(rows(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 21))))
