"""A flow whose expensive steps are served from a step cache the second time it runs.

python examples/cached_flow.py cache.db     # first run: computes (about a second)
python examples/cached_flow.py cache.db     # second run: served from the cache, at once
flowkernel run examples/cached_flow.py --cache cache.db
flowkernel cache stats --cache cache.db
"""

from __future__ import annotations

import sys
import time

from flowkernel import CachePolicy, Flow, Item, Ref, Step, tool


@tool(cache=CachePolicy(version="1", ttl=24 * 3600))
def measure(word: str) -> dict[str, int]:
    """Stands for an expensive, idempotent call (a model, a remote API): the same word, the same answer."""
    time.sleep(0.3)
    return {"letters": len(word), "vowels": sum(letter in "aeiou" for letter in word.lower())}


@tool
def total(measures: list[dict[str, int]]) -> dict[str, int]:
    """Cheap: not cached, it runs every time."""
    return {"letters": sum(m["letters"] for m in measures), "vowels": sum(m["vowels"] for m in measures)}


@tool
def words() -> list[str]:
    """The words to measure."""
    return ["flow", "kernel", "cache"]


flow = Flow(
    name="cached_words",
    steps=[
        Step(id="words", tool=words),
        Step(id="measure", tool=measure, map=Ref("words"), arguments={"word": Item()}),
        Step(id="total", tool=total, arguments={"measures": Ref("measure")}),
    ],
)


def main(path: str) -> None:
    from flowkernel.host import load_driver
    from flowkernel.host.cache import StepCache

    started = time.perf_counter()
    with StepCache(path) as cache:
        result = load_driver("sync").run_blocking(flow, cache=cache)
    elements = result.step("measure").subflow
    served = sum(a.cached for s in elements.steps for a in s.attempts) if elements is not None else 0
    print(f"{result.status}: {result.outputs['total']}")
    print(f"{served} of 3 measurements served from the cache in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cache.db")
