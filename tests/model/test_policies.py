"""Policies in the model: the retry delay formula and jitter, error types worth retrying, fallbacks,
step-over-tool precedence, and build-time validation of ``when`` conditions."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from flowkernel import Flow, FlowValidationError, Input, Problem, Ref, Step, tool
from flowkernel.errors import DefinitionError
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.retry import jitter_unit


@tool
def echo(x: Any = None) -> Any:
    return x


@tool
def other(x: Any = None) -> Any:
    return x


class Flags(BaseModel):
    flag: bool = False
    limit: int = 3


def problems_of(steps: list[Step], input_model: type[BaseModel] | None = None) -> tuple[Problem, ...]:
    with pytest.raises(FlowValidationError) as caught:
        Flow(name="f", steps=steps, input_model=input_model)
    return caught.value.problems


# ---- RetryPolicy.delay -------------------------------------------------------------------------


def test_the_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_delay, policy.multiplier) == (3, 0.1, 2.0)
    assert (policy.max_delay, policy.jitter, policy.retry_on, policy.retry_on_timeout) == (30.0, 0.0, (), True)


def test_the_delay_grows_exponentially_from_the_initial_delay() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=0.5, multiplier=2)
    assert [policy.delay(n, 0.5) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    tripled = RetryPolicy(initial_delay=0.25, multiplier=3)
    assert [tripled.delay(n, 0.0) for n in range(1, 5)] == [0.25, 0.75, 2.25, 6.75]


def test_without_jitter_the_unit_does_not_matter() -> None:
    policy = RetryPolicy(initial_delay=0.5, multiplier=2)
    assert {policy.delay(3, unit) for unit in (0.0, 0.25, 0.5, 0.999999)} == {2.0}


def test_the_delay_is_capped_by_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=0.5, multiplier=2, max_delay=3)
    assert [policy.delay(n, 0.5) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    # An initial delay above the cap is capped too.
    assert RetryPolicy(initial_delay=10, max_delay=4).delay(1, 0.5) == 4.0


def test_a_multiplier_of_one_waits_the_same_every_time_and_zero_means_at_once() -> None:
    assert {RetryPolicy(initial_delay=0.2, multiplier=1).delay(n, 0.3) for n in range(1, 8)} == {0.2}
    assert {RetryPolicy(initial_delay=0, jitter=1).delay(n, 0.9) for n in range(1, 8)} == {0.0}


def test_jitter_spreads_the_delay_linearly_within_its_fraction() -> None:
    policy = RetryPolicy(initial_delay=1.0, multiplier=2, jitter=0.2)
    assert policy.delay(1, 0.0) == pytest.approx(0.8)
    assert policy.delay(1, 0.5) == pytest.approx(1.0)
    assert policy.delay(1, 0.75) == pytest.approx(1.1)
    assert policy.delay(3, 0.25) == pytest.approx(4.0 * 0.9)
    units = [i / 1000 for i in range(1000)]
    delays = [policy.delay(2, u) for u in units]
    assert all(2.0 * 0.8 <= d < 2.0 * 1.2 for d in delays)
    assert delays == sorted(delays)  # a larger unit never waits less
    assert max(delays) - min(delays) == pytest.approx(2.0 * 0.4, abs=0.01)


def test_full_jitter_ranges_from_zero_to_twice_the_base() -> None:
    policy = RetryPolicy(initial_delay=1.0, jitter=1.0)
    assert policy.delay(1, 0.0) == 0.0
    assert policy.delay(1, 0.5) == 1.0
    assert 1.99 < policy.delay(1, 0.999) < 2.0


def test_jitter_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay=1.0, multiplier=2, max_delay=5, jitter=0.5)
    assert policy.delay(3, 0.999) == 5.0  # base 4, +50 % would be 6: capped
    assert policy.delay(5, 0.999) == 5.0  # base capped at 5, and the upward spread capped again
    assert policy.delay(5, 0.0) == pytest.approx(2.5)  # the downward spread still applies at the cap
    assert all(policy.delay(n, u / 100) <= 5.0 for n in range(1, 10) for u in range(100))


def test_a_long_retry_series_stays_at_max_delay_instead_of_overflowing() -> None:
    policy = RetryPolicy(max_attempts=10_000, initial_delay=0.1, multiplier=10, max_delay=5)
    assert policy.delay(400, 0.5) == 5.0
    assert RetryPolicy(max_attempts=10_000, initial_delay=0, multiplier=2).delay(2000, 0.5) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"initial_delay": -0.1},
        {"multiplier": 0.5},
        {"max_delay": -1},
        {"jitter": -0.1},
        {"jitter": 1.5},
        {"retry_on_errors": ("ValueError",)},  # extra fields are refused, not ignored
    ],
)
def test_invalid_retry_policies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(DefinitionError):
        RetryPolicy(**bad)


def test_a_retry_policy_is_frozen() -> None:
    policy = RetryPolicy()
    with pytest.raises(ValidationError):
        policy.max_attempts = 5  # type: ignore[misc]


# ---- which errors are retried ------------------------------------------------------------------


def test_an_empty_retry_on_retries_every_error_type() -> None:
    policy = RetryPolicy()
    assert all(policy.retries_type(t) for t in ("ValueError", "httpx.ReadTimeout", "ValidationError", "x"))


def test_builtin_names_match_exactly() -> None:
    policy = RetryPolicy(retry_on=("ValueError", "ConnectionError"))
    assert policy.retries_type("ValueError")
    assert policy.retries_type("ConnectionError")
    assert not policy.retries_type("TypeError")
    assert not policy.retries_type("ConnectionResetError")  # names, not the class hierarchy
    assert not policy.retries_type("MyValueError")
    assert not policy.retries_type("valueerror")


def test_qualified_names_match_by_dotted_suffix() -> None:
    policy = RetryPolicy(retry_on=("ReadTimeout", "mod.Error"))
    assert policy.retries_type("httpx.ReadTimeout")
    assert policy.retries_type("pkg.sub.ReadTimeout")
    assert policy.retries_type("ReadTimeout")
    assert policy.retries_type("pkg.mod.Error")
    assert policy.retries_type("mod.Error")
    assert not policy.retries_type("pkg.othermod.Error")  # the suffix starts at a dot
    assert not policy.retries_type("pkg.mod.MyError")
    assert not policy.retries_type("pkg.mod.Error.Inner")
    assert not policy.retries_type("Error")


def test_a_full_name_matches_itself() -> None:
    policy = RetryPolicy(retry_on=("pkg.mod.Error",))
    assert policy.retries_type("pkg.mod.Error")
    assert not policy.retries_type("Error")
    assert not policy.retries_type("mod.Error")


# ---- jitter_unit -------------------------------------------------------------------------------


def test_jitter_unit_is_deterministic_and_in_the_unit_interval() -> None:
    assert jitter_unit("run", "step", 1) == jitter_unit("run", "step", 1)
    values = [jitter_unit(f"run-{r}", f"s{s}", a) for r in range(10) for s in range(10) for a in range(1, 6)]
    assert all(isinstance(v, float) and 0.0 <= v < 1.0 for v in values)
    assert len(set(values)) == len(values)  # 500 distinct draws
    assert 0.4 < sum(values) / len(values) < 0.6  # spread over the interval, not bunched


def test_jitter_unit_differs_by_attempt_step_and_run_id() -> None:
    base = jitter_unit("run-1", "fetch", 1)
    assert jitter_unit("run-1", "fetch", 2) != base
    assert jitter_unit("run-1", "fetch2", 1) != base
    assert jitter_unit("run-2", "fetch", 1) != base
    # The parts are separated: moving characters between them changes the unit.
    assert jitter_unit("ab", "c", 1) != jitter_unit("a", "bc", 1)
    assert jitter_unit("r", "s1", 1) != jitter_unit("r", "s", 11)


def test_jitter_unit_is_stable_across_processes() -> None:
    # A hash of the text (blake2b), not Python's randomized hash(): a replay waits the same.
    digest = hashlib.blake2b(b"run-1\x00fetch\x001", digest_size=8).digest()
    assert jitter_unit("run-1", "fetch", 1) == int.from_bytes(digest, "big") / 2**64


# ---- Fallback ----------------------------------------------------------------------------------


def test_a_fallback_is_a_value_or_a_tool() -> None:
    assert Fallback(value={"rows": []}).value == {"rows": []}
    assert Fallback(value={"rows": []}).tool is None
    assert Fallback(tool=other).tool is other
    assert Fallback(tool=other).value is None
    assert Fallback(value=0).value == 0  # falsy values are values
    assert Fallback(value=False).value is False


def test_a_fallback_refuses_both_a_value_and_a_tool() -> None:
    with pytest.raises(DefinitionError, match="a fallback is a value or a tool, not both"):
        Fallback(value=1, tool=other)
    with pytest.raises(DefinitionError, match="not both"):
        Fallback(value=0, tool=other)


def test_a_fallback_refuses_unknown_fields_and_is_frozen() -> None:
    with pytest.raises(DefinitionError):
        Fallback(default=1)  # type: ignore[call-arg]
    fallback = Fallback(value=1)
    with pytest.raises(ValidationError):
        fallback.value = 2  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["ignore", "retry", 3])
def test_on_error_accepts_only_fail_continue_or_a_fallback(bad: Any) -> None:
    with pytest.raises(DefinitionError):
        Step(id="s", tool=echo, on_error=bad)


def test_on_error_defaults_to_fail() -> None:
    assert Step(id="s", tool=echo).on_error == "fail"
    assert Step(id="s", tool=echo, on_error="continue").on_error == "continue"
    assert Step(id="s", tool=echo, on_error=Fallback(value=1)).on_error == Fallback(value=1)


# ---- step over tool ----------------------------------------------------------------------------


def test_the_step_retry_policy_overrides_the_tools() -> None:
    tool_policy = RetryPolicy(max_attempts=2)
    step_policy = RetryPolicy(max_attempts=5)
    patient = tool(lambda: None, name="patient", retry=tool_policy, timeout=7)
    assert Step(id="s", tool=patient).retry_policy is tool_policy
    assert Step(id="s", tool=patient, retry=step_policy).retry_policy is step_policy
    assert Step(id="s", tool=echo).retry_policy is None
    assert Step(id="s", tool=echo, retry=step_policy).retry_policy is step_policy


def test_the_step_timeout_overrides_the_tools() -> None:
    patient = tool(lambda: None, name="patient", timeout=7)
    assert Step(id="s", tool=patient).timeout_seconds == 7
    assert Step(id="s", tool=patient, timeout=0.5).timeout_seconds == 0.5
    assert Step(id="s", tool=echo).timeout_seconds is None
    assert Step(id="s", tool=echo, timeout=2).timeout_seconds == 2


def test_the_plan_holds_the_policies_in_force() -> None:
    tool_policy = RetryPolicy(max_attempts=2)
    step_policy = RetryPolicy(max_attempts=5)
    patient = tool(lambda x=None: x, name="patient", retry=tool_policy, timeout=7)
    flow = Flow(
        name="f",
        steps=[
            Step(id="a", tool=patient),
            Step(id="b", tool=patient, retry=step_policy, timeout=1),
            Step(id="c", tool=echo),
        ],
    )
    assert flow.plan.retry == (tool_policy, step_policy, None)
    assert flow.plan.timeouts == (7, 1, None)


@pytest.mark.parametrize("bad", [0, -1])
def test_timeouts_must_be_positive(bad: float) -> None:
    with pytest.raises(DefinitionError):
        Step(id="s", tool=echo, timeout=bad)
    with pytest.raises(DefinitionError):
        tool(lambda: None, name="t", timeout=bad)


def test_the_tool_decorator_takes_retry_and_timeout() -> None:
    policy = RetryPolicy(max_attempts=4)

    @tool(retry=policy, timeout=3)
    def fetch() -> None:
        return None

    assert fetch.retry is policy
    assert fetch.timeout == 3


# ---- when conditions ---------------------------------------------------------------------------


def test_valid_conditions_build() -> None:
    flow = Flow(
        name="f",
        input_model=Flags,
        steps=[
            Step(id="a", tool=echo),
            Step(id="my-step", tool=echo),
            Step(id="b", tool=echo, when="steps.a.ok"),
            Step(id="c", tool=echo, when="inputs.flag && steps.a.count > `2`"),
            Step(id="d", tool=echo, when="steps.\"my-step\" == 'yes'"),
            Step(id="e", tool=echo, when="length(steps.a.rows) >= inputs.limit"),
            Step(id="f", tool=echo, when="`true`"),
        ],
    )
    plan = flow.plan
    index = {step_id: i for i, step_id in enumerate(plan.step_ids)}
    # A condition's steps are dependencies: it is evaluated once they are done.
    assert plan.deps[index["b"]] == (index["a"],)
    assert plan.deps[index["c"]] == (index["a"],)
    assert plan.deps[index["d"]] == (index["my-step"],)
    assert plan.deps[index["f"]] == ()
    condition = plan.conditions[index["c"]]
    assert condition is not None
    assert condition.text == "inputs.flag && steps.a.count > `2`"
    assert condition.reads == (("a", index["a"]),)
    assert plan.conditions[index["a"]] is None


def test_a_condition_on_inputs_without_an_input_model_makes_the_input_required() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=echo, when="inputs.flag")])
    assert flow.plan.input_names == ("flag",)


def test_a_condition_can_depend_on_a_step_declared_later() -> None:
    flow = Flow(name="f", steps=[Step(id="b", tool=echo, when="steps.a"), Step(id="a", tool=echo)])
    assert flow.plan.deps == ((1,), ())


def test_a_condition_can_close_a_cycle() -> None:
    problems = problems_of(
        [Step(id="a", tool=echo, when="steps.b.ok"), Step(id="b", tool=echo, arguments={"x": Ref("a")})]
    )
    assert [p.location for p in problems] == ["steps"]
    assert "dependency cycle" in problems[0].message
    assert "a" in problems[0].message
    assert "b" in problems[0].message


def test_every_bad_condition_is_reported_at_once() -> None:
    problems = problems_of(
        [
            Step(id="fetch", tool=echo),
            Step(id="a", tool=echo, when="steps.fetch.[ok"),  # does not parse
            Step(id="b", tool=echo, when=""),  # empty
            Step(id="c", tool=echo, when="steps.fecth.ok"),  # unknown step, with a suggestion
            Step(id="d", tool=echo, when="inputs.flga"),  # unknown input
            Step(id="e", tool=echo, when="steps.e.ok"),  # its own output
            Step(id="f", tool=echo, when="length(keys(steps)) > `0`"),  # hides which steps it reads
            Step(id="g", tool=echo, when="inputs"),  # the whole inputs object
            Step(id="h", tool=echo, when="steps.nowhere && inputs.nothing"),  # two unknown names
        ],
        input_model=Flags,
    )
    by_location: dict[str, list[str]] = {}
    for problem in problems:
        by_location.setdefault(problem.location, []).append(problem.message)
    assert list(by_location) == [
        "steps[1] (a).when",
        "steps[2] (b).when",
        "steps[3] (c).when",
        "steps[4] (d).when",
        "steps[5] (e).when",
        "steps[6] (f).when",
        "steps[7] (g).when",
        "steps[8] (h).when",
    ]
    assert by_location["steps[1] (a).when"][0].startswith("invalid path 'steps.fetch.[ok'")
    assert by_location["steps[2] (b).when"] == ["a condition cannot be empty"]
    assert by_location["steps[3] (c).when"] == ["references unknown step 'fecth'; did you mean 'fetch'?"]
    assert by_location["steps[4] (d).when"] == ["references unknown flow input 'flga'; did you mean 'flag'?"]
    assert by_location["steps[5] (e).when"] == ["a step's condition cannot read its own output"]
    assert by_location["steps[6] (f).when"] == [
        "a condition reads steps.<id> or inputs.<name>, not 'steps (read whole)'"
    ]
    assert by_location["steps[7] (g).when"] == [
        "a condition reads steps.<id> or inputs.<name>, not 'inputs (read whole)'"
    ]
    assert by_location["steps[8] (h).when"] == [
        "references unknown step 'nowhere'",
        "references unknown flow input 'nothing'",
    ]


def test_condition_problems_are_reported_with_the_other_problems() -> None:
    problems = problems_of(
        [
            Step(id="a", tool=echo, arguments={"x": Ref("missing")}),
            Step(id="b", tool=echo, when="steps.missing2"),
            Step(id="c", tool=echo, arguments={"x": Input("q", "[")}),
        ]
    )
    locations = [p.location for p in problems]
    assert locations == ["steps[0] (a).arguments.x", "steps[1] (b).when", "steps[2] (c).arguments.x"]


def test_the_flow_validation_error_lists_every_condition_problem_in_its_message() -> None:
    with pytest.raises(FlowValidationError) as caught:
        Flow(name="f", steps=[Step(id="a", tool=echo, when="steps.zz"), Step(id="b", tool=echo, when="(")])
    message = str(caught.value)
    assert message.startswith("invalid flow 'f': 2 problems")
    assert "steps[0] (a).when: references unknown step 'zz'" in message
    assert "steps[1] (b).when: invalid path '('" in message


def test_a_step_output_field_named_like_a_root_is_allowed_in_a_condition() -> None:
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=echo), Step(id="b", tool=echo, when="steps.a.inputs || steps.a.steps")],
    )
    assert flow.plan.deps == ((), (0,))


def test_a_condition_reading_neither_steps_nor_inputs_is_refused() -> None:
    problems = problems_of([Step(id="a", tool=echo, when="flag")])
    assert [p.location for p in problems] == ["steps[0] (a).when"]
