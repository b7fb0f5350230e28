"""A backend for session tests: it starts nothing by itself; the test decides when each call completes."""

from __future__ import annotations

from typing import Any

from flowkernel import Completion, Flow, Invoke, Ref, Returned, StartTimer, Step, tool
from flowkernel.host import Backend


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeBackend(Backend):
    """Starts nothing by itself: the test decides when each call completes."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[Invoke] = []
        self.timers: list[StartTimer] = []
        self.handles: dict[str, Handle] = {}
        self._posted: list[Completion] = []

    def start_invoke(self, command: Invoke) -> None:
        self.started.append(command)
        self.handles[command.call_id] = handle = Handle()
        self.track(command.call_id, handle)

    def start_timer(self, command: StartTimer) -> None:
        self.timers.append(command)
        self.handles[command.call_id] = handle = Handle()
        self.track(command.call_id, handle)

    def post(self, completion: Completion) -> None:
        self._posted.append(completion)

    def take(self) -> list[Completion]:
        batch, self._posted = self._posted, []
        return batch

    def finish(self, call_id: str, value: Any = None) -> None:
        self.complete(Returned(call_id, value, 1.0, 2.0))

    def ids(self) -> list[str]:
        return [c.call_id for c in self.started]


@tool
def src() -> Any:  # fake drivers answer anything for it: no return annotation to check
    return 0


@tool
def use(v: Any) -> Any:
    return v


def chain_flow() -> Flow:
    return Flow(
        name="chain",
        steps=[
            Step(id="a", tool=src),
            Step(id="b", tool=src),
            Step(id="c", tool=use, arguments={"v": Ref("a")}),
            Step(id="d", tool=use, arguments={"v": Ref("c")}),
        ],
    )
