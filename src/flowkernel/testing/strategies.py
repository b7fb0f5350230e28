"""Hypothesis strategies for random scenarios: a flow, its inputs, and a script of call outcomes.

Flows are DAGs of up to ``max_steps`` steps whose declaration order is a random permutation of a
topological order; arguments mix literals, flow inputs, whole outputs, JMESPath selections and
references nested in lists and dicts; some steps add ``after`` dependencies; tools are sync or async,
some with pydantic input/output models. The script makes chosen calls fail, return invalid outputs,
or sleep, so drivers complete calls in adversarial orders.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from ..model.flow import Flow
from ..model.refs import Input, Ref
from ..model.step import Step
from .scripted import Scenario, Script, scripted_tool

__all__ = ("Scenario", "scenarios")

_DELAYS = (0.0, 0.0, 0.0005, 0.001, 0.002)


@st.composite
def scenarios(draw: st.DrawFn, *, max_steps: int = 30, max_deps: int = 3) -> Scenario:
    """A random :class:`Scenario` with up to ``max_steps`` steps."""
    n = draw(st.integers(min_value=1, max_value=max_steps))
    ids = [f"s{i}" for i in range(n)]
    failures: set[tuple[str, int]] = set()
    bad_outputs: set[tuple[str, int]] = set()
    delays: dict[tuple[str, int], float] = {}
    specs = []
    for i, step_id in enumerate(ids):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, max_deps), unique=True)) if i else []
        arguments, after, field_types = _draw_arguments(draw, [ids[d] for d in deps])
        is_async = draw(st.booleans())
        output_model = draw(st.integers(0, 3)) == 0
        input_model = _input_model(step_id, field_types) if draw(st.integers(0, 4)) == 0 else None
        if draw(st.integers(0, 6)) == 0:
            failures.add((step_id, 1))
        if output_model and draw(st.integers(0, 5)) == 0:
            bad_outputs.add((step_id, 1))
        delays[(step_id, 1)] = draw(st.sampled_from(_DELAYS))
        specs.append((step_id, arguments, tuple(after), is_async, output_model, input_model))
    script = Script(frozenset(failures), frozenset(bad_outputs), delays)
    order = draw(st.permutations(range(n)))
    steps = [
        Step(
            id=step_id,
            tool=scripted_tool(step_id, script, is_async=is_async, output_model=out, input_model=in_model),
            arguments=arguments,
            after=after,
        )
        for step_id, arguments, after, is_async, out, in_model in (specs[k] for k in order)
    ]
    outputs = None
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))
        outputs = {f"out_{s}": Ref(s, "n") if draw(st.booleans()) else Ref(s) for s in chosen}
    flow = Flow(name="generated", version=str(n), steps=steps, outputs=outputs, input_model=ScenarioInputs)
    return Scenario(flow, {"seed": draw(st.integers(0, 1000)), "label": "x"}, script)


class ScenarioInputs(BaseModel):
    """The inputs every generated flow takes."""

    seed: int
    label: str


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
    if draw(st.integers(0, 3)) == 0:
        arguments["label"], types["label"] = Input("label"), str
    # Now and then a field type that the wired-in value cannot meet: an input validation failure.
    wrong = [name for name, t in types.items() if t is not int]
    if wrong and draw(st.integers(0, 6)) == 0:
        types[wrong[0]] = int
    return arguments, after, types


def _input_model(step_id: str, field_types: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (t, ...) for name, t in field_types.items()}
    return create_model(f"Args_{step_id}", **fields)
