"""Hypothesis strategies for random scenarios: a flow, its inputs, and a script of call outcomes.

Flows are DAGs of up to ``max_steps`` steps whose declaration order is a random permutation of a
topological order; arguments mix literals, flow inputs, whole outputs, JMESPath selections and
references nested in lists and dicts; some steps add ``after`` dependencies; tools are sync or async,
some with pydantic input/output models. The script makes chosen calls fail (some by raising
``CancelledError`` themselves), return invalid outputs, or sleep, so drivers complete calls in
adversarial orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from ..model.flow import Flow
from ..model.policies import ContextPolicy, Fallback
from ..model.refs import Context, Input, Item, Ref
from ..model.retry import RetryPolicy
from ..model.step import Step
from .scripted import Scenario, Script, scripted_tool

__all__ = ("Scenario", "scenarios")

_DELAYS = (0.0, 0.0, 0.0005, 0.001, 0.002)


@dataclass
class _StepSpec:
    step_id: str
    arguments: dict[str, Any]
    after: tuple[str, ...]
    is_async: bool
    output_model: bool
    input_model: type[BaseModel] | None
    extra: dict[str, Any]  # policy fields of the Step: retry, timeout, on_error, when, join


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    max_steps: int = 30,
    max_deps: int = 3,
    policies: bool = True,
    timeouts_fire: bool = False,
    firing_timeout: float = 0.25,
) -> Scenario:
    """A random :class:`Scenario` with up to ``max_steps`` steps.

    With ``policies``, steps also get retry policies (with scripted failures of later attempts),
    error policies (continue, fallback values and fallback tools), ``when`` conditions and
    ``join="any"``; some get timeouts that never fire. With ``timeouts_fire``, some calls hang past
    their step's (short) timeout: slower, so kept for a property of its own. ``firing_timeout`` is that
    timeout: a call that does not hang must finish well within it on every driver under test, so a
    cluster driver (a round trip through its scheduler, on a loop it shares) needs a longer one than
    the in-process drivers. Hangs outlast it: blocking calls by 2.4 times, others by 3 s or more.
    """
    n = draw(st.integers(min_value=1, max_value=max_steps))
    ids = [f"s{i}" for i in range(n)]
    failures: set[tuple[str, int]] = set()
    bad_outputs: set[tuple[str, int]] = set()
    hangs: set[tuple[str, int]] = set()
    blocking: set[tuple[str, int]] = set()
    cancels: set[tuple[str, int]] = set()
    delays: dict[tuple[str, int], float] = {}
    specs: list[_StepSpec] = []
    context = None
    if policies and _one_in(draw, 4):
        context = ContextPolicy(collision=draw(st.sampled_from(("overwrite", "warn", "error"))))
    for i, step_id in enumerate(ids):
        dep_ids = [
            ids[d] for d in (draw(st.lists(st.integers(0, i - 1), max_size=min(i, max_deps), unique=True)) if i else [])
        ]
        arguments, after, field_types = _draw_arguments(draw, dep_ids)
        if context is not None and _one_in(draw, 2):
            arguments["ctx"], field_types["ctx"] = (Context(), Any) if draw(st.booleans()) else (Context("n"), Any)
        output_model = _one_in(draw, 3)
        spec = _StepSpec(step_id, arguments, tuple(after), draw(st.booleans()), output_model, None, {})
        if _one_in(draw, 4):
            spec.input_model = _input_model(step_id, field_types)
        attempts = 1
        if policies:
            attempts = _draw_policies(draw, spec, dep_ids, ids[:i], firing_timeout if timeouts_fire else None)
        for j in range(spec.extra.get("subflow", 0)):
            if _one_in(draw, 4):
                failures.add((f"{step_id}_c{j}", 1))
                if _one_in(draw, 3):
                    cancels.add((f"{step_id}_c{j}", 1))  # a sub-run's tool raising CancelledError itself
        for attempt in range(1, attempts + 1):
            key = (step_id, attempt)
            if _one_in(draw, 6 if attempt == 1 and "retry" not in spec.extra else 1):
                failures.add(key)
                if _one_in(draw, 3):
                    cancels.add(key)  # the failure is the tool raising CancelledError itself
            elif output_model and _one_in(draw, 5):
                bad_outputs.add(key)
            elif "timeout" in spec.extra and timeouts_fire and draw(st.booleans()):
                hangs.add(key)
                if spec.is_async and attempt == attempts and _one_in(draw, 2):
                    # blocks its event loop: its timer cannot fire before it returns. Only a step's last
                    # attempt: a retry behind it would wait for the loop it blocks (the sync driver's one
                    # loop thread, a Dask worker's loop), which the oracle does not model
                    blocking.add(key)
            delays[key] = draw(st.sampled_from(_DELAYS))
        if spec.extra.get("on_error") == "fallback-tool" and _one_in(draw, 2):
            failures.add((f"{step_id}-fallback", 1))
        specs.append(spec)
    if sum("timeout" in spec.extra for spec in specs) > 1:
        blocking.clear()  # a blocked loop holds back every call on it: another one's timeout would fire too
    script = Script(
        frozenset(failures),
        frozenset(bad_outputs),
        frozenset(hangs),
        delays,
        hang_seconds=max(3.0, 4 * firing_timeout),
        blocking=frozenset(blocking),
        block_seconds=2.4 * firing_timeout,
        cancels=frozenset(cancels),
    )
    order = draw(st.permutations(range(n)))
    steps = [_build_step(specs[k], script) for k in order]
    outputs = None
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        outputs = {f"out_{s}": Ref(s, "n") if draw(st.booleans()) else Ref(s) for s in chosen}
    flow = Flow(
        name="generated", version=str(n), steps=steps, outputs=outputs, input_model=ScenarioInputs, context=context
    )
    items = draw(st.lists(st.integers(0, 9), max_size=4))
    return Scenario(flow, {"seed": draw(st.integers(0, 1000)), "label": "x", "items": items}, script)


def _one_in(draw: st.DrawFn, odds: int) -> bool:
    """True for one value of ``0..odds`` (once in ``odds + 1`` draws), False for 0, where hypothesis
    shrinks to: a minimal scenario keeps only the features (failures, policies, models...) it needs."""
    return draw(st.integers(0, odds)) == odds


def _draw_policies(
    draw: st.DrawFn, spec: _StepSpec, deps: list[str], earlier: list[str], firing_timeout: float | None
) -> int:
    """Give a step policies; return how many attempts it may make. With a ``firing_timeout``, most steps
    get that timeout (some of their calls will hang past it); otherwise a few get one that never fires."""
    attempts = 1
    if _one_in(draw, 2):
        attempts = draw(st.integers(1, 3))
        spec.extra["retry"] = RetryPolicy(
            max_attempts=attempts,
            initial_delay=draw(st.sampled_from((0.0, 0.001))),
            jitter=draw(st.sampled_from((0.0, 0.5))),
            retry_on=draw(st.sampled_from(((), ("ScriptedFailure",), ("ValueError",)))),
            retry_on_timeout=draw(st.booleans()),
        )
    if _one_in(draw, 5 if firing_timeout is None else 1):
        spec.extra["timeout"] = 30.0 if firing_timeout is None else firing_timeout
    choice = draw(st.integers(0, 11))  # 9-11: a policy; 0 (what hypothesis shrinks to): none
    if choice == 9:
        spec.extra["on_error"] = "continue"
    elif choice == 10:
        spec.extra["on_error"] = Fallback(value={"step": "fallback", "n": 7})
    elif choice == 11:
        spec.extra["on_error"] = "fallback-tool"  # built once the script exists
    if earlier and _one_in(draw, 5):
        source = draw(st.sampled_from(deps or earlier))
        threshold = draw(st.integers(0, 1_000_003))
        spec.extra["when"] = draw(
            st.sampled_from((f"steps.{source}.n > `{threshold}`", f"inputs.seed < `{threshold % 1000}`"))
        )
    if len(deps) >= 2 and _one_in(draw, 3):
        spec.extra["join"] = "any"
    if spec.input_model is None and _one_in(draw, 9):  # a sub-flow step (a small chain)
        spec.extra.pop("retry", None)
        spec.extra.pop("timeout", None)
        spec.extra["subflow"] = draw(st.integers(1, 2))
        first = next(iter(spec.arguments.values()), 1)
        spec.arguments = {"v": first}
        return 1
    if spec.input_model is None and _one_in(draw, 7):  # a map step over a list input
        spec.extra["map"] = Input("label") if _one_in(draw, 5) else Input("items")  # label: not a list
        spec.extra["max_concurrency"] = draw(st.sampled_from((None, 1, 2)))
        spec.arguments["element"] = Item()
    return attempts


def _build_step(spec: _StepSpec, script: Script) -> Step:
    extra = dict(spec.extra)
    if extra.get("on_error") == "fallback-tool":
        fallback = scripted_tool(f"{spec.step_id}-fallback", script, is_async=spec.is_async, counted=False)
        extra["on_error"] = Fallback(tool=fallback)
    size = extra.pop("subflow", 0)
    if size:
        chain = [
            Step(
                id=f"c{j}",
                tool=scripted_tool(f"{spec.step_id}_c{j}", script, is_async=spec.is_async),
                arguments={"v": Input("v") if j == 0 else Ref(f"c{j - 1}", "n")},
            )
            for j in range(size)
        ]
        child = Flow(name=f"{spec.step_id}-child", steps=chain)
        return Step(id=spec.step_id, flow=child, arguments=spec.arguments, after=spec.after, **extra)
    tool = scripted_tool(
        spec.step_id, script, is_async=spec.is_async, output_model=spec.output_model, input_model=spec.input_model
    )
    return Step(id=spec.step_id, tool=tool, arguments=spec.arguments, after=spec.after, **extra)


class ScenarioInputs(BaseModel):
    """The inputs every generated flow takes."""

    seed: int
    label: str
    items: list[int]


def _draw_arguments(draw: st.DrawFn, deps: list[str]) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Arguments wiring ``deps`` in (in assorted shapes), plus literals and inputs; also field types."""
    arguments: dict[str, Any] = {}
    types: dict[str, Any] = {}
    after: list[str] = []
    for j, dep in enumerate(deps):
        shape = draw(st.sampled_from(("whole", "path", "nested", "after")))
        name = f"a{j}"
        if shape == "whole":
            arguments[name], types[name] = Ref(dep), Any
        elif shape == "path":
            arguments[name], types[name] = Ref(dep, "n"), int
        elif shape == "nested":
            arguments[name], types[name] = {"v": [Ref(dep, "n"), 1], "from": Ref(dep, "step")}, dict[str, Any]
        else:
            after.append(dep)
    if draw(st.booleans()):
        arguments["k"], types["k"] = draw(st.integers(-5, 5)), int
    if draw(st.booleans()):
        arguments["seed"], types["seed"] = Input("seed"), int
    if _one_in(draw, 3):
        arguments["label"], types["label"] = Input("label"), str
    # Now and then a field type that the wired-in value cannot meet: an input validation failure.
    wrong = [name for name, t in types.items() if t is not int]
    if wrong and _one_in(draw, 6):
        types[wrong[0]] = int
    return arguments, after, types


def _input_model(step_id: str, field_types: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (t, ...) for name, t in field_types.items()}
    return create_model(f"Args_{step_id}", **fields)
