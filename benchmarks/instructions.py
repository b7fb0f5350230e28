"""Instructions per step of the plain sync chain, counted by valgrind's callgrind: repeatable on a busy
machine, where timings are not. Compares the working tree with a git revision, each in its own process::

    python benchmarks/instructions.py b363cf6
    python benchmarks/instructions.py b363cf6 --map 1000   # per element of a map step over 1,000 elements

Each side runs the chain once (warm-up, imports) and then five times; the difference of the two counts
divided by 4,000 steps is the cost of a step, free of start-up. With ``--map N`` the flow is one map step
calling the same tool on ``N`` elements (``max_concurrency=1`` too), and the cost is per element.
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 1000
EXTRA_RUNS = 4

CHAIN = f"""
import sys
from flowkernel import Flow, Ref, Step, tool
from flowkernel_sync import SyncDriver

@tool
def inc(x):  # unannotated: the kernel's own path, without the validation annotations bring
    return x + 1

steps = [Step(id="s0", tool=inc, arguments={{"x": 0}})]
steps += [Step(id=f"s{{i}}", tool=inc, arguments={{"x": Ref(f"s{{i - 1}}")}}) for i in range(1, {STEPS})]
flow = Flow(name="chain", steps=steps)
driver = SyncDriver()
for _ in range(1 + int(sys.argv[1])):
    driver.run(flow, max_concurrency=1)
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


def instructions(tree: Path, runs: int, script: Path) -> int:
    """Instructions callgrind counts for the chain script run ``1 + runs`` times against ``tree``."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree / 'drivers' / 'sync' / 'src'}"}
    out = Path(tempfile.mkstemp(suffix=".cg")[1])
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script), str(runs)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    out.unlink(missing_ok=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_step(tree: Path, script: Path, calls: int = STEPS) -> float:
    return (instructions(tree, EXTRA_RUNS, script) - instructions(tree, 0, script)) / (EXTRA_RUNS * calls)


def main(revision: str, elements: int | None = None) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "chain.py"
        script.write_text(CHAIN if elements is None else MAP.format(elements=elements))
        calls = STEPS if elements is None else elements
        old = Path(scratch) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), revision], check=True,
                       capture_output=True)  # fmt: skip
        try:
            before, now = per_step(old, script, calls), per_step(ROOT, script, calls)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    what = "plain sync chain, instructions per step" if elements is None else f"map of {elements:,}, per element"
    print(f"{what}: {revision} {before:,.0f}, working tree {now:,.0f}")
    print(f"ratio {now / before:.3f}x" + (" (target <= 1.05x)" if elements is None else ""))


if __name__ == "__main__":
    args = sys.argv[1:]
    mapped = None
    if "--map" in args:
        at = args.index("--map")
        mapped = int(args[at + 1])
        del args[at : at + 2]
    main(args[0] if args else "HEAD", mapped)
