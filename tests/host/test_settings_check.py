"""Run options are checked before anything runs, on every driver (issue 10, item 12)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flowkernel import Flow, Step, tool
from flowkernel.errors import FlowKernelError, RunOptionsError
from flowkernel.host import Driver
from flowkernel.host.journal import SqliteJournal
from flowkernel.host.settings import RunSettings
from flowkernel.host.settings_check import _CHECKS, KNOWN_SETTINGS, check_run_settings
from flowkernel.model import Resource

CALLS: list[int] = []


@tool
def record(x: int) -> int:
    CALLS.append(x)
    return x


FLOW = Flow(name="checked", steps=[Step(id="a", tool=record, arguments={"x": 1})])


def problems(settings: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RunOptionsError) as caught:
        check_run_settings(settings, "f")
    assert isinstance(caught.value, FlowKernelError)
    assert isinstance(caught.value, ValueError)
    return [(p.location, p.message) for p in caught.value.problems]


def test_every_setting_has_a_check() -> None:
    assert set(_CHECKS) == set(RunSettings.__annotations__) == set(KNOWN_SETTINGS)


def test_good_settings_pass() -> None:
    check_run_settings({}, "f")
    check_run_settings(
        {
            "run_id": "r",
            "max_concurrency": 3,
            "deadline": 1e7,
            "fail_fast": True,
            "on_event": print,
            "middleware": [],
            "resources": (Resource("r", lambda: None),),  # type: ignore[arg-type, return-value]
            "journal": None,
            "resume": False,
            "allow_flow_change": False,
            "flow_source": "x.py:flow",
        },
        "f",
    )
    check_run_settings({"deadline": 2, "max_concurrency": None, "run_id": None}, "f")


def test_a_misspelt_option_gets_a_did_you_mean_and_a_foreign_one_the_list() -> None:
    assert problems({"max_concurency": 2, "timeout": 3}) == [
        ("max_concurency", "unknown option 'max_concurency'; did you mean 'max_concurrency'?"),
        ("timeout", f"unknown option 'timeout' (the options are: {', '.join(KNOWN_SETTINGS)})"),
    ]


@pytest.mark.parametrize("bad", [math.nan, 1.5, "5", True, 0, -1, math.inf])
def test_a_concurrency_limit_is_a_whole_number_of_at_least_one(bad: Any) -> None:
    [(where, message)] = problems({"max_concurrency": bad})
    assert where == "max_concurrency"
    assert "whole number of at least 1" in message
    assert type(bad).__name__ in message


@pytest.mark.parametrize("bad", [math.inf, 1e12, math.nan, 0, -1, "5", False])
def test_a_deadline_is_finite_positive_and_bounded(bad: Any) -> None:
    [(where, message)] = problems({"deadline": bad})
    assert where == "deadline"
    assert "(0, 1e+07]" in message


def test_every_problem_is_listed_at_once() -> None:
    found = problems({"run_id": 5, "fail_fast": "yes", "max_concurrency": "5", "on_event": 3, "middleware": "m"})
    assert [where for where, _ in found] == ["run_id", "fail_fast", "max_concurrency", "on_event", "middleware"]
    assert found[1][1] == "must be True or False, got 'yes' (str)"


def test_resume_needs_a_journal_and_a_run_id() -> None:
    assert [m for _, m in problems({"resume": True})] == [
        "resume=True needs the journal to resume from: pass journal=",
        "resume=True needs the run_id of the run to resume",
    ]


def test_foreign_journal_and_resources_values() -> None:
    found = problems({"journal": "runs.db", "resources": [object()], "flow_source": 3, "allow_flow_change": 1})
    assert [where for where, _ in found] == ["journal", "resources", "flow_source", "allow_flow_change"]


@pytest.mark.parametrize(
    "settings",
    [
        {"max_concurency": 2},
        {"max_concurrency": math.nan},
        {"max_concurrency": "5"},
        {"max_concurrency": 1.5},
        {"run_id": 5},
        {"fail_fast": "yes"},
        {"deadline": math.inf},
        {"deadline": 1e12},
    ],
    ids=str,
)
def test_every_driver_refuses_bad_options_before_calling_anything(
    flowkernel_driver: Driver, settings: dict[str, Any]
) -> None:
    CALLS.clear()
    with pytest.raises(RunOptionsError) as caught:
        flowkernel_driver.run_blocking(FLOW, **settings)
    assert [p.location for p in caught.value.problems] == list(settings)
    assert CALLS == []


def test_a_journaled_run_with_bad_options_records_nothing(tmp_path: Any) -> None:
    from flowkernel_sync import SyncDriver

    with SqliteJournal(tmp_path / "runs.db") as journal:
        with pytest.raises(RunOptionsError):
            SyncDriver().run(FLOW, journal=journal, run_id="r1", deadline=math.inf)  # type: ignore[call-arg]
        assert list(journal.runs()) == []
        assert SyncDriver().run(FLOW, journal=journal, run_id="r1").status.value == "succeeded"
