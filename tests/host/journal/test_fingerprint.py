"""The structure hash: equal for the same structure, different for any change that decides what runs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import Flow, Input, Ref, RetryPolicy, Step, tool
from flowkernel.host.journal import flow_fingerprint, flow_structure


@tool
def fetch(url: str) -> str:
    return url


@tool(name="fetch")
def fetch_fixed(url: str) -> str:
    """The same tool with its bug fixed: same name, new body."""
    return url.strip()


@tool
def parse(text: str) -> str:
    return text


class Page(BaseModel):
    url: str


class PageWithDepth(BaseModel):
    url: str
    depth: int = 0


def build(**change: Any) -> Flow:
    steps = [
        Step(id="get", tool=change.get("get_tool", fetch), arguments={"url": Input("url")}, **change.get("get", {})),
        Step(id="parse", tool=parse, arguments={"text": Ref("get")}),
    ]
    return Flow(name="crawl", steps=steps + change.get("extra", []), input_model=change.get("model"))


def test_the_same_structure_hashes_the_same_even_with_another_tool_body() -> None:
    assert flow_fingerprint(build()) == flow_fingerprint(build())
    assert flow_fingerprint(build()) == flow_fingerprint(build(get_tool=fetch_fixed))
    assert flow_structure(build())["steps"][0]["arguments"] == {"url": "Input(name='url', path='')"}


@pytest.mark.parametrize(
    "change",
    [
        {"get": {"retry": RetryPolicy(max_attempts=3)}},
        {"get": {"timeout": 2.0}},
        {"get": {"when": "inputs.url"}},
        {"get_tool": fetch.model_copy(update={"name": "other"})},
        {"extra": [Step(id="more", tool=parse, arguments={"text": Ref("parse")})]},
        {"model": Page},
    ],
    ids=["retry", "timeout", "condition", "tool name", "a step more", "input model"],
)
def test_a_change_that_decides_what_runs_changes_the_hash(change: dict[str, Any]) -> None:
    assert flow_fingerprint(build(**change)) != flow_fingerprint(build())


def test_a_field_added_to_a_model_changes_the_hash() -> None:
    assert flow_fingerprint(build(model=Page)) != flow_fingerprint(build(model=PageWithDepth))
