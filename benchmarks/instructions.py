"""Instructions per step of the plain sync chain, counted by valgrind's callgrind: repeatable on a busy
machine, where timings are not. Compares the working tree with a git revision, each in its own process::

    python benchmarks/instructions.py b363cf6
    python benchmarks/instructions.py b363cf6 --map 1000   # per element of a map step over 1,000 elements
    python benchmarks/instructions.py b363cf6 --one-step   # per run of a one-step flow (a run's fixed cost)
    python benchmarks/instructions.py b363cf6 --validated  # the pydantic chain, and the bare loop it is judged by
    python benchmarks/instructions.py e9118b1 --build 1000 # per step of building a 1,000-step chain
    python benchmarks/instructions.py 93dc53d --journal    # what journaling adds per step (durability=process)
    python benchmarks/instructions.py --floors             # this tree's chains against their floors (no revision)

Each side runs the chain once (warm-up, imports) and then five times; the difference of the two counts
divided by 4,000 steps is the cost of a step, free of start-up. With ``--map N`` the flow is one map step
calling the same tool on ``N`` elements (``max_concurrency=1`` too), and the cost is per element. With
``--one-step`` the flow is one step and the cost is per run: 1 + 200 runs against 1, over 200. With
``--validated`` the chain's tool has input and output models (``Ref(prev, "x")`` between steps, as in
``bench_chain``), and the bare validate → call → validate loop is counted too, on the working tree.
With ``--build N`` nothing runs: each side builds a chain of ``N`` steps once (warm-up) and then four
times more, for the plain ``inc`` chain and for the chain with pydantic models (``Ref(prev, "x")``), and
counts per step both the whole build (``Step(...)`` for every step and ``Flow(...)``) and ``Flow(...)``
alone (the same steps, already built). From 50,000 steps on, one more build, of the plain chain only.
With ``--journal`` each side runs ``bench_journal``'s chain (its tool annotated, not validated)
journaled (``durability="process"``, each run into a fresh file; opening and closing it, a few hundred
instructions per step, are counted) and unjournaled, and the cost is the journaled step's count less the
plain one's: the journal's overhead in instructions, SQLite's included (the kernel's work in its system
calls is not: ``strace -c`` counts those).
With ``--floors`` nothing is compared with a revision: on the working tree, per step of a 1,000-step chain,
the bare ``x = inc(x)`` loop, the kernel alone (``run_flow`` driven by hand, as ``bench_chain``'s
"kernel alone"), the sync driver (``max_concurrency=1``), the asyncio floor (``await create_task(...)``
per step, as ``bench_async_chain``'s) and the asyncio driver's chain of async tools: what bounds the
chain targets, on a count that does not move with the machine's load.
String hashing is seeded alike on both sides (``PYTHONHASHSEED=0``), so sets and dicts probe alike.
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 1000
EXTRA_RUNS = 4
ONE_STEP_RUNS = 200

CHAIN = """
import sys
from flowkernel import Flow, Ref, Step, tool
from flowkernel_sync import SyncDriver

@tool
def inc(x):  # unannotated: the kernel's own path, without the validation annotations bring
    return x + 1

steps = [Step(id="s0", tool=inc, arguments={{"x": 0}})]
steps += [Step(id=f"s{{i}}", tool=inc, arguments={{"x": Ref(f"s{{i - 1}}")}}) for i in range(1, {steps})]
flow = Flow(name="chain", steps=steps)
driver = SyncDriver()
for _ in range(1 + int(sys.argv[1])):
    driver.run(flow, max_concurrency=1)
"""


VALIDATED = f"""
import sys
from pydantic import BaseModel
from flowkernel import Flow, Ref, Step, tool
from flowkernel_sync import SyncDriver

class X(BaseModel):
    x: int

class Y(BaseModel):
    x: int

def inc(x):
    return {{"x": x + 1}}

def bare():
    x = 0
    for _ in range({STEPS}):
        x = Y.model_validate(inc(**X.model_validate({{"x": x}}).model_dump())).x

step_tool = tool(input_model=X, output_model=Y)(inc)
steps = [Step(id="s0", tool=step_tool, arguments={{"x": 0}})]
steps += [Step(id=f"s{{i}}", tool=step_tool, arguments={{"x": Ref(f"s{{i - 1}}", "x")}}) for i in range(1, {STEPS})]
flow = Flow(name="chain", steps=steps)
driver = SyncDriver()
for _ in range(1 + int(sys.argv[1])):
    bare() if sys.argv[2:] == ["bare"] else driver.run(flow, max_concurrency=1)
"""


MAP = """
import sys
from flowkernel import Flow, Input, Item, Step, tool
from flowkernel_sync import SyncDriver

@tool
def inc(x):
    return x + 1

flow = Flow(name="map", steps=[Step(id="each", tool=inc, map=Input("xs"), arguments={{"x": Item()}})])
driver = SyncDriver()
xs = list(range({elements}))
for _ in range(1 + int(sys.argv[1])):
    driver.run(flow, {{"xs": xs}}, max_concurrency=1)
"""

BUILD = """
import sys
from pydantic import BaseModel
from flowkernel import Flow, Input, Ref, Step, tool

class X(BaseModel):
    x: int

class Y(BaseModel):
    x: int

@tool(validate=False)
def inc(x):
    return x + 1

@tool(input_model=X, output_model=Y)
def inc_validated(x):
    return {{"x": x + 1}}

TOOL, PATH = (inc, "") if "{variant}" == "plain" else (inc_validated, "x")

def chain_steps(n):
    steps = [Step(id="s0", tool=TOOL, arguments={{"x": Input("x")}})]
    steps += [Step(id=f"s{{i}}", tool=TOOL, arguments={{"x": Ref(f"s{{i - 1}}", PATH)}}) for i in range(1, n)]
    return steps

steps = chain_steps({steps})
Flow(name="chain", steps=steps)  # warm-up: imports, pydantic validators built on first use, caches
for _ in range(int(sys.argv[1])):
    if "{part}" == "flow":
        Flow(name="chain", steps=steps)
    else:
        Flow(name="chain", steps=chain_steps({steps}))
"""
JOURNALED = """
from __future__ import annotations
import sys, tempfile
from pathlib import Path
from flowkernel import Flow, Ref, Step, tool
from flowkernel.host.journal import SqliteJournal
from flowkernel_sync import SyncDriver

def inc(x: int) -> int:  # annotated, unvalidated: bench_journal's tool
    return x + 1

try:
    inc = tool(validate=False)(inc)
except TypeError:  # a revision from before tool(validate=...)
    inc = tool(inc)

steps = [Step(id="s0", tool=inc, arguments={{"x": 0}})]
steps += [Step(id=f"s{{i}}", tool=inc, arguments={{"x": Ref(f"s{{i - 1}}")}}) for i in range(1, {steps})]
flow = Flow(name="chain", steps=steps)
driver = SyncDriver()
journaled = sys.argv[2:] == ["journal"]
with tempfile.TemporaryDirectory() as directory:
    for run in range(1 + int(sys.argv[1])):
        if not journaled:
            driver.run(flow, max_concurrency=1)
            continue
        journal = SqliteJournal(Path(directory) / f"{{run}}.db", durability="process")
        try:
            driver.run(flow, max_concurrency=1, journal=journal, run_id=f"run-{{run}}")
        finally:
            journal.close()
"""

FLOORS = """
import asyncio, sys
from flowkernel import Flow, Input, Ref, Returned, RunOptions, Step, run_flow, tool

def inc(x):
    return x + 1

async def ainc(x):
    return x + 1

def as_tool(fn):
    return tool(validate=False, async_backend="any")(fn) if fn in (ainc, nap) else tool(validate=False)(fn)

def chain(fn):
    step_tool = as_tool(fn)
    steps = [Step(id="s0", tool=step_tool, arguments={{"x": Input("x")}})]
    steps += [Step(id=f"s{{i}}", tool=step_tool, arguments={{"x": Ref(f"s{{i - 1}}")}}) for i in range(1, {steps})]
    return Flow(name="chain", steps=steps)

def bare():
    x = 0
    for _ in range({steps}):
        x = inc(x)

def kernel_alone(flow):
    kernel = run_flow(flow, {{"x": 0}}, RunOptions("floors", 1))
    commands = kernel.send(None)
    try:
        while True:
            command = commands[0]
            commands = kernel.send([Returned(command.call_id, command.tool.fn(**command.arguments), 0.0, 0.0)])
    except StopIteration:
        pass

async def floor():
    x = 0
    for _ in range({steps}):
        x = await asyncio.create_task(ainc(x))

async def nap(x):
    await asyncio.sleep(0.01)

def fan_out(fn):
    step_tool = as_tool(fn)
    steps = [Step(id=f"s{{i}}", tool=step_tool, arguments={{"x": i}}) for i in range({steps})]
    return Flow(name="fan-out", steps=steps)

def kernel_fan_out(flow):
    kernel = run_flow(flow, {{}}, RunOptions("floors"))
    commands = kernel.send(None)
    try:
        kernel.send([Returned(c.call_id, c.tool.fn(**c.arguments), 0.0, 0.0) for c in commands])
    except StopIteration:
        pass

async def floor_fan_out():
    async with asyncio.TaskGroup() as group:
        for i in range({steps}):
            group.create_task(nap(i))

variant = sys.argv[2]
if variant == "bare":
    once = bare
elif variant == "kernel":
    flow = chain(inc)
    once = lambda: kernel_alone(flow)
elif variant == "sync":
    from flowkernel_sync import SyncDriver
    flow, driver = chain(inc), SyncDriver()
    once = lambda: driver.run(flow, {{"x": 0}}, max_concurrency=1)
elif variant == "asyncio floor":
    once = lambda: asyncio.run(floor())
elif variant == "fan-out kernel":
    flow = fan_out(inc)
    once = lambda: kernel_fan_out(flow)
elif variant == "fan-out floor":
    once = lambda: asyncio.run(floor_fan_out())
elif variant == "fan-out asyncio":
    from flowkernel_asyncio import AsyncioDriver
    flow, driver = fan_out(nap), AsyncioDriver()
    once = lambda: asyncio.run(driver.run(flow))
else:
    from flowkernel_asyncio import AsyncioDriver
    flow, driver = chain(ainc), AsyncioDriver()
    once = lambda: asyncio.run(driver.run(flow, {{"x": 0}}))
for _ in range(1 + int(sys.argv[1])):
    once()
"""
FLOOR_VARIANTS = (
    "bare",
    "kernel",
    "sync",
    "asyncio floor",
    "asyncio",
    "fan-out kernel",
    "fan-out floor",
    "fan-out asyncio",
)

BUILD_PARTS = {"build": "Step(...) + Flow(...)", "flow": "Flow(...) alone"}
BUILD_VARIANTS = {"plain": "inc chain", "pydantic": "pydantic-model chain"}


def instructions(tree: Path, runs: int, script: Path, *extra: str) -> int:
    """Instructions callgrind counts for the chain script run ``1 + runs`` times against ``tree``."""
    drivers = [tree / "drivers" / name / "src" for name in ("sync", "asyncio")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [tree / "src", *drivers]))}
    env["PYTHONHASHSEED"] = "0"
    out = Path(tempfile.mkstemp(suffix=".cg")[1])
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script), str(runs), *extra],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    out.unlink(missing_ok=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_step(tree: Path, script: Path, calls: int = STEPS, runs: int = EXTRA_RUNS, *extra: str) -> float:
    return (instructions(tree, runs, script, *extra) - instructions(tree, 0, script, *extra)) / (runs * calls)


def validated(revision: str, script: Path, old: Path) -> None:
    """The pydantic chain on ``revision`` and on the working tree, and the bare loop: three counts at once."""
    with ThreadPoolExecutor(3) as pool:
        before, now, bare = (
            pool.submit(per_step, old, script),
            pool.submit(per_step, ROOT, script),
            pool.submit(per_step, ROOT, script, STEPS, EXTRA_RUNS, "bare"),
        )
        chain_before, chain_now, loop = before.result(), now.result(), bare.result()
    print(f"pydantic chain, instructions per step: {revision} {chain_before:,.0f}, working tree {chain_now:,.0f}")
    print(
        f"bare validate -> call -> validate loop {loop:,.0f}: chain / bare {revision} {chain_before / loop:.2f}x,"
        f" working tree {chain_now / loop:.2f}x (target <= 1.5x)"
    )


def journal_per_step(revision: str, script: Path, old: Path) -> None:
    """The journaled chain less the plain one, per step, on ``revision`` and on the working tree."""
    with ThreadPoolExecutor(2) as pool:
        counts = {
            (tree, mode): pool.submit(per_step, tree, script, STEPS, EXTRA_RUNS, mode)
            for tree in (old, ROOT)
            for mode in ("journal", "plain")
        }
        figures = {key: future.result() for key, future in counts.items()}
    for name, tree in ((revision, old), ("working tree", ROOT)):
        journaled, plain = figures[tree, "journal"], figures[tree, "plain"]
        print(
            f"{name}: journaled chain {journaled:,.0f}, plain {plain:,.0f} instructions/step:"
            f" the journal adds {journaled - plain:,.0f}"
        )
    before = figures[old, "journal"] - figures[old, "plain"]
    now = figures[ROOT, "journal"] - figures[ROOT, "plain"]
    print(f"journal overhead ratio {now / before:.3f}x")


def floors(script: Path) -> None:
    """The working tree's chains and the floors they are judged against, per step, and their ratios."""
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(per_step, ROOT, script, STEPS, EXTRA_RUNS, name) for name in FLOOR_VARIANTS}
        counts = {name: future.result() for name, future in futures.items()}
    for name in FLOOR_VARIANTS:
        print(f"{name:>14}: {counts[name]:9,.0f} instructions/step")
    kernel, floor = counts["kernel"] - counts["bare"], counts["asyncio floor"]
    driver = counts["sync"] - counts["kernel"]
    print(f"the kernel alone, less the bare loop: {kernel:,.0f}; the sync driver adds {driver:,.0f}")
    print(f"asyncio chain / asyncio floor: {counts['asyncio'] / floor:.2f}x (target <= 1.5x)")
    least = (floor + kernel) / floor
    print(f"(asyncio floor + the kernel alone) / asyncio floor: {least:.2f}x, the least any asyncio driver reaches")
    beyond = counts["asyncio"] - floor - kernel
    print(f"the asyncio driver adds {beyond:,.0f} beyond the kernel and the floor's own task per step")
    wide, fan_floor = counts["fan-out kernel"] - counts["bare"], counts["fan-out floor"]
    fan_out = counts["fan-out asyncio"] / fan_floor
    print(f"fan-out of 10 ms sleeps, asyncio / bare TaskGroup: {fan_out:.2f}x (target <= 1.3x)")
    least = (fan_floor + wide) / fan_floor
    print(f"(TaskGroup + the kernel alone) / TaskGroup: {least:.2f}x, the least any asyncio driver reaches")


def build_per_step(old: Path, scratch: Path, steps: int) -> None:
    """Print the build's instructions per step, before and now, for each variant and part."""
    big = steps >= 50_000  # minutes per build under callgrind: one build, of the plain chain
    builds = 1 if big else EXTRA_RUNS
    for variant, title in BUILD_VARIANTS.items():
        for part, what in BUILD_PARTS.items():
            if big and (variant, part) != ("plain", "build"):
                continue
            script = scratch / f"build_{variant}_{part}.py"
            script.write_text(BUILD.format(variant=variant, part=part, steps=steps))
            counts = [
                (instructions(tree, builds, script) - instructions(tree, 0, script)) / (builds * steps)
                for tree in (old, ROOT)
            ]
            print(f"{title}, {what}, n={steps:,}: before {counts[0]:,.0f}, working tree {counts[1]:,.0f} "
                  f"instructions/step ({counts[1] / counts[0]:.3f}x)", flush=True)  # fmt: skip


def main(
    revision: str,
    elements: int | None = None,
    one_step: bool = False,
    models: bool = False,
    build: int | None = None,
    journal: bool = False,
    against_floors: bool = False,
) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "chain.py"
        if against_floors:
            script.write_text(FLOORS.format(steps=STEPS))
            floors(script)
            return
        if models:
            script.write_text(VALIDATED)
        elif journal:
            script.write_text(JOURNALED.format(steps=STEPS))
        elif elements is not None:
            script.write_text(MAP.format(elements=elements))
        else:
            script.write_text(CHAIN.format(steps=1 if one_step else STEPS))
        calls = elements if elements is not None else 1 if one_step else STEPS
        runs = ONE_STEP_RUNS if one_step else EXTRA_RUNS
        old = Path(scratch) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), revision], check=True,
                       capture_output=True)  # fmt: skip
        try:
            if models:
                validated(revision, script, old)
                return
            if build is not None:
                build_per_step(old, Path(scratch), build)
                return
            if journal:
                journal_per_step(revision, script, old)
                return
            before, now = per_step(old, script, calls, runs), per_step(ROOT, script, calls, runs)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    if elements is not None:
        what = f"map of {elements:,}, per element"
    else:
        what = "one-step flow, instructions per run" if one_step else "plain sync chain, instructions per step"
    print(f"{what}: {revision} {before:,.0f}, working tree {now:,.0f}")
    print(f"ratio {now / before:.3f}x" + (" (target <= 1.05x)" if elements is None and not one_step else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Callgrind instructions per step: the working tree against REV.")
    parser.add_argument("revision", nargs="?", default="HEAD")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--map", type=int, metavar="N", help="per element of a map step over N elements")
    mode.add_argument("--one-step", action="store_true", help="per run of a one-step flow")
    mode.add_argument("--validated", action="store_true", help="the pydantic chain, and the bare loop")
    mode.add_argument("--build", type=int, metavar="N", help="per step of building an N-step chain")
    mode.add_argument("--journal", action="store_true", help="what journaling adds per step (durability=process)")
    mode.add_argument("--floors", action="store_true", help="this tree's chains against their floors")
    args = parser.parse_args()
    main(args.revision, args.map, args.one_step, args.validated, args.build, args.journal, args.floors)
