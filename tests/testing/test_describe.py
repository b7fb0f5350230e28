"""describe_scenario: a scenario in plain lines, every step with what its calls are scripted to do."""

from __future__ import annotations

from flowkernel import Flow, Input, Item, Ref, RetryPolicy, Step
from flowkernel.model.policies import ContextPolicy, Fallback
from flowkernel.testing import Scenario, Script, describe_scenario, scripted_tool


def test_every_step_its_arguments_policies_and_scripted_calls() -> None:
    script = Script(
        failures=frozenset({("a", 1), ("a", 2), ("b-fallback", 1), ("m_c0", 1)}),
        cancels=frozenset({("a", 2)}),
        bad_outputs=frozenset({("b", 1)}),
        delays={("a", 3): 0.002},
    )
    a = Step(
        id="a",
        tool=scripted_tool("a", script, is_async=True, output_model=True),
        arguments={"seed": Input("seed"), "k": 3},
        retry=RetryPolicy(max_attempts=3, initial_delay=0.001, retry_on=("ScriptedFailure",)),
        timeout=30.0,
    )
    b = Step(
        id="b",
        tool=scripted_tool("b", script, is_async=False, output_model=True),
        arguments={"x": {"v": [Ref("a", "n"), 1]}},
        after=("a",),
        when="steps.a.n > `5`",
        on_error=Fallback(tool=scripted_tool("b-fallback", script, is_async=False, counted=False)),
    )
    child = Flow(
        name="m-child",
        steps=[Step(id="c0", tool=scripted_tool("m_c0", script, is_async=False), arguments={"v": Input("v")})],
    )
    m = Step(id="m", flow=child, arguments={"v": Ref("a")}, on_error="continue")
    e = Step(
        id="e",
        tool=scripted_tool("e", script, is_async=False),
        map=Input("items"),
        max_concurrency=2,
        arguments={"x": Item()},
    )
    flow = Flow(
        name="demo", steps=[a, b, m, e], outputs={"out": Ref("b", "n")}, context=ContextPolicy(collision="warn")
    )
    assert describe_scenario(Scenario(flow, {"seed": 1, "items": [1, 2]}, script)) == "\n".join(
        [
            """flow 'demo': 4 steps, inputs {"seed": 1, "items": [1, 2]}""",
            "outputs: out = ref(b.n)",
            "context policy: collision=warn",
            "  a: async tool scripted_a, output model ScriptedOutput",
            "      arguments: seed=input(seed), k=3",
            "      retry: up to 3 attempts, only on ScriptedFailure, first delay 0.001 s, jitter 0",
            "      timeout: 30 s",
            "      calls: attempt 1 fails (ScriptedFailure); attempt 2 raises CancelledError itself; "
            "attempt 3 succeeds after 2 ms",
            "  b: sync tool scripted_b, output model ScriptedOutput",
            """      arguments: x={"v": [ref(a.n), 1]}""",
            "      after: a",
            "      when: steps.a.n > `5`",
            "      on error: fall back to the sync tool scripted_b-fallback (attempt 1 fails (ScriptedFailure))",
            "      calls: attempt 1 returns an output its model rejects",
            "  m: sub-flow 'm-child' (1 step)",
            "      arguments: v=ref(a)",
            "      on error: continue",
            "      c0: sync tool scripted_m_c0",
            "          arguments: v=input(v)",
            "          calls: attempt 1 fails (ScriptedFailure)",
            "  e: sync tool scripted_e",
            "      arguments: x=item()",
            "      map: over input(items), at most 2 at once",
            "      calls: attempt 1 succeeds",
        ]
    )
