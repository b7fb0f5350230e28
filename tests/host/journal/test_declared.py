"""The classes a flow declares (the JSON codec's allowlist): found once per tool and once per flow object.

Resolving a tool's annotations compiles them; done for every step of every run it cost more than
recording the step (issue 12's journal overhead).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import Flow, Input, Ref, Step, tool
from flowkernel.host.journal import SqliteJournal, flow_classes, open_run


class Point(BaseModel):
    x: int


class Label(BaseModel):
    text: str


def move(p: Point) -> Point:
    return Point(x=p.x + 1)


def name(p: Point) -> Label:
    return Label(text=str(p.x))


MOVE = tool(validate=False)(move)
NAME = tool(validate=False)(name)


def chain(n: int) -> Flow:
    steps = [Step(id="s0", tool=MOVE, arguments={"p": Input("p")})]
    steps += [Step(id=f"s{i}", tool=MOVE, arguments={"p": Ref(f"s{i - 1}")}) for i in range(1, n)]
    return Flow(name="chain", steps=[*steps, Step(id="label", tool=NAME, arguments={"p": Ref(f"s{n - 1}")})])


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The functions whose annotations are resolved from here on."""
    calls: list[Any] = []
    real: Callable[..., Any] = typing.get_type_hints

    def counting(obj: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    return calls


def test_a_tool_shared_by_many_steps_is_resolved_once(resolved: list[Any]) -> None:
    found = flow_classes(chain(50))
    assert resolved.count(move) == 1
    assert resolved.count(name) == 1
    assert Point in found  # every tool's classes, however they are shared
    assert Label in found


def test_runs_of_one_flow_object_resolve_its_tools_once(tmp_path: Path, resolved: list[Any]) -> None:
    flow = chain(20)
    journal = SqliteJournal(tmp_path / "j.db")
    try:
        for run in range(3):
            opened = open_run(flow, {"p": Point(x=0)}, {"journal": journal, "run_id": f"r{run}"})
            assert opened.recorder is not None
            opened.recorder.release()
        assert journal.codec.allowed(Point)
        assert journal.codec.allowed(Label)
    finally:
        journal.close()
    assert resolved.count(move) == 1
    assert resolved.count(name) == 1
