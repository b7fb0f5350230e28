"""The live progress display (``flowkernel.cli.progress``) and what ``run`` prints at the end: the display's
state from synthetic events, its frames, when it is shown at all (``--quiet``, ``--json``, not a terminal),
the summary of a run that did not succeed (``--table`` for every row), and a real run on a pseudo-terminal
whose progress must show while the run is still going."""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from flowkernel import CachePolicy, ErrorInfo, ErrorKind, ExecutionResult, Flow, RunStatus, Step, tool
from flowkernel.cli.app import cli
from flowkernel.cli.progress import LiveProgress, ProgressState, is_nested, live_progress, on_terminal
from flowkernel.events import (
    AttemptFailed,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepCancelled,
    StepFinished,
    StepSkipped,
    StepStarted,
)
from flowkernel.host import Driver
from flowkernel.host.cache import StepCache

ROOT = Path(__file__).resolve().parents[2]
RUN = "r1"


@tool
def one() -> int:
    return 1


def started(path: str, attempt: int = 1) -> StepStarted:
    return StepStarted(RUN, path, attempt, "echo", f"{path}@{attempt}", {})


def failed(path: str, message: str = "no good") -> StepFinished:
    return StepFinished(RUN, path, "failed", error=ErrorInfo(ErrorKind.TOOL, "ValueError", message, path))


def succeeded(path: str) -> StepFinished:
    return StepFinished(RUN, path, "succeeded", output=1)


def feed(state: ProgressState, *events: Event) -> None:
    for event in events:
        state.feed(event)


# ---- the state, from synthetic events ------------------------------------------------------------------


def test_paths_inside_a_step_are_nested() -> None:
    assert not is_nested("fetch")
    assert not is_nested("fetch.v2-b")
    assert is_nested("report/fetch")
    assert is_nested("each[3]")
    assert is_nested("report/each[3]/fetch")


def test_state_counts_top_level_steps_and_shows_nested_ones_as_running() -> None:
    state = ProgressState(total=5)
    assert state.snapshot() == (5, 0, {}, (), (), False, 0)
    feed(
        state,
        RunStarted(RUN, "", "demo", "1"),
        started("a"),
        started("report"),
        started("report/fetch"),
        started("each"),
        started("each[0]"),
        started("each[1]"),
    )
    snap = state.snapshot()
    assert snap.running == ("a", "report", "report/fetch", "each", "each[0]", "each[1]")
    assert (snap.total, snap.done) == (5, 0)

    feed(state, succeeded("a"), succeeded("each[0]"), failed("report/fetch", "down"), succeeded("each[1]"))
    snap = state.snapshot()
    assert snap.done == 1  # nested steps never count towards the total
    assert snap.counts == {"succeeded": 1}
    assert snap.running == ("report", "each")
    assert snap.failures == ("report/fetch: ValueError: down",)

    feed(
        state,
        failed("report", "a step of the sub-flow failed"),
        succeeded("each"),
        StepSkipped(RUN, "after_report", "dependency 'report' failed"),
        StepCancelled(RUN, "slow"),
    )
    snap = state.snapshot()
    assert (snap.done, snap.running, snap.finished) == (5, (), False)
    assert snap.counts == {"succeeded": 2, "failed": 1, "skipped": 1, "cancelled": 1}
    assert snap.failures[-1] == "report: ValueError: a step of the sub-flow failed"


def test_state_shows_retries_and_later_attempts_and_the_end_of_the_run() -> None:
    state = ProgressState(total=1)
    error = ErrorInfo(ErrorKind.TOOL, "OSError", "flaky", "fetch")
    state.feed(started("fetch"))
    state.feed(AttemptFailed(RUN, "fetch", 1, "get", "fetch@1", error))
    assert state.snapshot().running == ("fetch",)  # a failed attempt is not a failure yet
    state.feed(RetryScheduled(RUN, "fetch", 2, 0.5))
    assert state.snapshot().running == ("fetch (attempt 2 in 0.5 s)",)
    state.feed(started("fetch", attempt=2))
    assert state.snapshot().running == ("fetch (attempt 2)",)
    assert state.snapshot().failures == ()
    state.feed(succeeded("fetch"))
    state.feed(RunFinished(RUN, "sub", None))  # type: ignore[arg-type]  # a sub-run's end is not the run's
    assert not state.snapshot().finished
    state.feed(RunFinished(RUN, "", None))  # type: ignore[arg-type]
    assert state.snapshot()[1:] == (1, {"succeeded": 1}, (), (), True, 0)


def test_a_resumed_run_counts_its_replayed_steps_once() -> None:
    state = ProgressState(total=2)
    # b was in flight where the record ends: the replay starts it, then it is started again
    feed(state, RunStarted(RUN, "", "demo", "1"), started("a"), succeeded("a"), started("b"), started("b"))
    assert state.snapshot()[1:4] == (1, {"succeeded": 1}, ("b",))


def test_state_is_safe_to_feed_from_many_threads() -> None:
    state = ProgressState(total=800)
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for k in range(100):
            path = f"s{worker}_{k}"
            state.feed(started(path))
            state.feed(started(f"{path}/inner"))
            state.feed(succeeded(f"{path}/inner"))
            state.feed(succeeded(path) if k % 10 else failed(path))
            state.snapshot()

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    snap = state.snapshot()
    assert (snap.done, snap.running) == (800, ())
    assert snap.counts == {"succeeded": 720, "failed": 80}
    assert len(snap.failures) == 3  # only the latest few are kept


# ---- frames and when they are drawn -----------------------------------------------------------------


def terminal_console(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None, _environ={}), out


def frame_text(display: LiveProgress, width: int = 100) -> str:
    console, out = terminal_console(width)
    console.print(display.render())
    return out.getvalue()


def test_a_frame_shows_done_of_total_failures_running_steps_and_elapsed_time() -> None:
    console, _ = terminal_console()
    display = LiveProgress("demo [bold]flow[/bold]", 12, console)
    for event in (started("a"), succeeded("a"), started("b"), failed("b", "bad [red]input[/red]"), started("c")):
        display.on_event(event)
    for k in range(8):
        display.on_event(started(f"c/each[{k}]"))
    display.on_event(StepSkipped(RUN, "d", "dependency 'b' failed"))
    display.on_event(succeeded("e")._replace(cached=True))
    display.on_event(started("c/each[8]"))
    display.on_event(succeeded("c/each[8]")._replace(cached=True))  # nested: not counted
    text = frame_text(display)
    first, *rest = text.splitlines()
    assert "demo [bold]flow[/bold]" in first  # names are shown as they are, never as markup
    assert re.search(r"\b4/12 steps\b", first)
    assert "1 failed" in first
    assert "1 cached, 1 skipped" in first
    assert re.search(r"\d+:\d\d:\d\d", first)  # the elapsed time
    assert rest[0] == "  running: c, c/each[0], c/each[1], c/each[2], c/each[3], c/each[4] and 3 more"
    assert rest[1] == "  failed b: ValueError: bad [red]input[/red]"


def test_a_narrow_terminal_cuts_lines_instead_of_wrapping_them() -> None:
    console, _ = terminal_console(40)
    display = LiveProgress("demo", 3, console)
    display.on_event(started("a_step_with_a_rather_long_name"))
    display.on_event(started("another_step_with_a_long_name"))
    lines = frame_text(display, 40).splitlines()
    assert lines[-1].startswith("  running: a_step")
    assert lines[-1].endswith("…")
    assert all(len(line) <= 40 for line in lines)


def test_nothing_is_drawn_before_the_delay_so_a_quick_run_prints_as_before() -> None:
    console, out = terminal_console()
    with LiveProgress("demo", 2, console, delay=30) as display:
        display.on_event(started("a"))
        display.on_event(succeeded("a"))
        assert not display.shown
    assert out.getvalue() == ""


def test_the_display_appears_after_the_delay_and_is_erased_at_the_end() -> None:
    console, out = terminal_console()
    with LiveProgress("demo", 4, console, delay=0.01, refresh_per_second=50) as display:
        for path in "abc":
            display.on_event(started(path))
            display.on_event(succeeded(path))
        deadline = time.monotonic() + 10
        while not (display.shown and "3/4 steps" in out.getvalue()):
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.01)
    assert not display.shown
    drawn = out.getvalue()
    assert drawn.startswith("\x1b[?25l")  # the cursor is hidden while it shows...
    assert drawn.rindex("\x1b[?25h") > drawn.rindex("3/4 steps")  # ...and shown again at the end,
    assert drawn.endswith("\x1b[2K")  # where the display's lines are erased


def test_it_is_off_unless_enabled_and_on_a_terminal() -> None:
    flow = Flow(name="tiny", steps=[Step(id="a", tool=one)])
    console, out = terminal_console()
    assert on_terminal(console) is False  # force_terminal on a StringIO is still not a TTY
    with live_progress(flow, console=console) as on_event:
        assert on_event is None
    assert not on_terminal(Console(file=io.StringIO(), _environ={"FORCE_COLOR": "1"}))
    assert out.getvalue() == ""


def test_it_is_on_for_a_real_terminal_and_off_with_term_dumb_or_when_disabled() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            flow = Flow(name="tiny", steps=[Step(id="a", tool=one)])
            console = Console(file=tty, _environ={"TERM": "xterm"})
            assert on_terminal(console)
            with live_progress(flow, console=console) as on_event:
                assert on_event is not None
            with live_progress(flow, console=console, enabled=False) as on_event:
                assert on_event is None
            assert not on_terminal(Console(file=tty, _environ={"TERM": "dumb"}))
            assert not on_terminal(Console(file=tty, _environ={"TERM": "xterm", "TTY_INTERACTIVE": "0"}))
    finally:
        os.close(master)
        os.close(slave)


# ---- what run prints at the end -----------------------------------------------------------------------

FLOWS = """
    import threading

    from flowkernel import Flow, Input, Ref, Step, tool

    @tool
    def echo(value: object) -> object:
        return value

    @tool
    def explode(value: object) -> object:
        raise RuntimeError(f"no good: [bold]{value}[/bold]")

    @tool
    def stuck(value: object = None) -> None:
        threading.Event().wait(2)

    failing = Flow(
        name="failing",
        steps=(
            Step(id="first", tool=echo, arguments={"value": Input("n")}),
            Step(id="boom", tool=explode, arguments={"value": Ref("first")}),
            Step(id="after_boom", tool=echo, arguments={"value": Ref("boom")}),
            Step(id="independent", tool=echo, arguments={"value": 1}),
        ),
    )
    fine = Flow(
        name="fine",
        steps=[
            Step(id="one", tool=echo, arguments={"value": 1}),
            Step(id="two", tool=echo, arguments={"value": Ref("one")}),
        ],
    )
    slow = Flow(
        name="slow",
        steps=[Step(id="quick", tool=echo, arguments={"value": 1}), Step(id="stuck", tool=stuck)]
        + [Step(id=f"later_{k}", tool=echo, arguments={"value": k}, after=("stuck",)) for k in range(8)],
    )
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "progress_flows.py"
    path.write_text(textwrap.dedent(FLOWS), encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    result = CliRunner(env={"COLUMNS": "120"}).invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("│")]


def test_a_failed_run_ends_with_a_summary_and_table_shows_every_row(flows: Path) -> None:
    result = invoke("run", f"{flows}:failing", "-i", "n=3", "--run-id", "f1")
    assert result.exit_code == 1
    assert table_rows(result.stdout) == []
    assert result.stdout.splitlines()[:3] == [
        "failing v1, run f1 (a summary: --table lists every step)",
        "  skipped: after_boom",
        "run failed (2 succeeded, 1 failed, 1 skipped)",
    ]
    assert "  error in boom: [tool] RuntimeError: no good: [bold]3[/bold]" in result.stdout.splitlines()
    assert "'independent': 1" in result.stdout  # the outputs, as before

    full = invoke("run", f"{flows}:failing", "-i", "n=3", "--run-id", "f1", "--table")
    assert full.exit_code == 1
    assert [row.split("│")[1].strip() for row in table_rows(full.stdout)] == [
        "first",
        "boom",
        "after_boom",
        "independent",
    ]
    tail = full.stdout[full.stdout.index("run failed") :]
    assert tail == result.stdout[result.stdout.index("run failed") :]  # the rest is the same


def test_a_stopped_run_names_what_was_cancelled_a_few_at_a_time(flows: Path) -> None:
    result = invoke("run", f"{flows}:slow", "--deadline", "0.2", "--run-id", "s1")
    assert result.exit_code == 1
    assert table_rows(result.stdout) == []
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "slow v1, run s1 (a summary: --table lists every step)",
        "  cancelled while running: stuck",
        "  cancelled before starting: later_0, later_1, later_2, later_3, later_4 and 3 more",
    ]
    assert lines[3].startswith("run timed_out (1 succeeded, 9 cancelled): ")
    full = invoke("run", f"{flows}:slow", "--deadline", "0.2", "--table")
    assert full.exit_code == 1
    assert len(table_rows(full.stdout)) == 10


def test_a_succeeded_run_still_prints_its_table(flows: Path) -> None:
    result = invoke("run", f"{flows}:fine", "--run-id", "ok")
    assert result.exit_code == 0
    assert "fine v1, run ok" in result.stdout.splitlines()[0]
    assert [row.split("│")[1].strip() for row in table_rows(result.stdout)] == ["one", "two"]
    assert "run succeeded (2 succeeded)" in result.stdout


def test_resume_ends_like_run(flows: Path, tmp_path: Path) -> None:
    journal = str(tmp_path / "runs.db")
    ran = invoke("run", f"{flows}:failing", "-i", "n=3", "--journal", journal, "--run-id", "j1")
    assert ran.exit_code == 1
    resumed = invoke("resume", journal, "j1", "--quiet")  # a finished run: its record is replayed
    assert resumed.exit_code == 1
    assert resumed.stdout == ran.stdout
    assert resumed.stdout.startswith("failing v1, run j1 (a summary: --table lists every step)\n")
    full = invoke("resume", journal, "j1", "--table")
    assert full.exit_code == 1
    assert len(table_rows(full.stdout)) == 4


def test_quiet_changes_nothing_off_a_terminal_and_json_stays_as_it_was(flows: Path) -> None:
    plain = invoke("run", f"{flows}:failing", "-i", "n=3", "--run-id", "f1")
    quiet = invoke("run", f"{flows}:failing", "-i", "n=3", "--run-id", "f1", "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (plain.exit_code, plain.stdout, plain.stderr)
    as_json = invoke("run", f"{flows}:failing", "-i", "n=3", "--json", "--table", "--quiet")
    assert as_json.exit_code == 1
    assert ExecutionResult.from_json(as_json.stdout).status is RunStatus.FAILED
    assert as_json.stderr == ""


def test_every_driver_feeds_the_display_through_on_event(flowkernel_driver: Driver, tmp_path: Path) -> None:
    flow = Flow(
        name="three",
        steps=[
            Step(id="a", tool=one),
            Step(id="b", tool=one, after=("a",), cache=CachePolicy()),
            Step(id="c", tool=one, after=("a",)),
        ],
    )
    snapshots = []
    with StepCache(tmp_path / "cache.db") as cache:
        for _ in range(2):  # the second run is served "b" from the cache
            display = LiveProgress("three", 3, Console(file=io.StringIO()), delay=30)
            with display:
                result = flowkernel_driver.run_blocking(flow, on_event=display.on_event, cache=cache)
            assert result.status is RunStatus.SUCCEEDED
            snapshots.append(display.state.snapshot()[1:])
    assert snapshots == [(3, {"succeeded": 3}, (), (), True, 0), (3, {"succeeded": 3}, (), (), True, 1)]


# ---- a real terminal ------------------------------------------------------------------------------------

CHAIN = """
    import time
    from pathlib import Path

    from flowkernel import Flow, Input, Ref, Step, tool

    @tool
    def tick(previous: object = None) -> int:
        time.sleep(0.1)
        return 1

    @tool
    def wait_for_gate(previous: object, gate: str) -> str:
        deadline = time.monotonic() + 20
        while not Path(gate).exists():  # the test opens it once it has seen the display
            if time.monotonic() > deadline:
                raise TimeoutError("the gate was never opened")
            time.sleep(0.01)
        return "through"

    steps = [Step(id="step_1", tool=tick)]
    steps += [Step(id=f"step_{k}", tool=tick, arguments={"previous": Ref(f"step_{k - 1}")}) for k in range(2, 12)]
    steps.append(Step(id="step_12", tool=wait_for_gate, arguments={"previous": Ref("step_11"), "gate": Input("gate")}))
    flow = Flow(name="chain", steps=steps)
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS = re.compile(r"\b(\d+)/12 steps\b")


class Terminal:
    """A process whose stderr (and stdout, unless piped) is a pseudo-terminal, read as it writes."""

    def __init__(self, args: list[str], *, pipe_stdout: bool = False) -> None:
        self.master, slave = os.openpty()
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE")}
        env.update(TERM="xterm-256color", COLUMNS="120", LINES="40", TTY_INTERACTIVE="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flowkernel", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
        )
        os.close(slave)
        self.raw = b""
        self.closed = False

    @property
    def text(self) -> str:
        """What was written so far, without escape sequences."""
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace"))

    def read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal is closed (the process exited)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                chunk = b""
            self.raw += chunk
            self.closed = not chunk
        return not self.closed

    def read_until(self, pattern: re.Pattern[str], timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := pattern.search(self.text)) is None:
            assert time.monotonic() < deadline, f"no {pattern.pattern!r} within {timeout} s:\n{self.text}"
            assert self.read(0.05) or pattern.search(self.text), f"ended without {pattern.pattern!r}:\n{self.text}"
        return found

    def finish(self, timeout: float = 30) -> tuple[int, bytes]:
        """Read to the end; the exit code and, if it was piped, stdout."""
        deadline = time.monotonic() + timeout
        while self.read(0.05):
            assert time.monotonic() < deadline, f"still running after {timeout} s:\n{self.text}"
        stdout = self.process.stdout.read() if self.process.stdout is not None else b""
        return self.process.wait(timeout=max(deadline - time.monotonic(), 1)), stdout

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        os.close(self.master)


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    path = tmp_path / "chain_flow.py"
    path.write_text(textwrap.dedent(CHAIN), encoding="utf-8")
    return path


@pytest.fixture
def terminal() -> Iterator[Any]:
    opened: list[Terminal] = []

    def start(args: list[str], *, pipe_stdout: bool = False) -> Terminal:
        opened.append(Terminal(args, pipe_stdout=pipe_stdout))
        return opened[-1]

    yield start
    for term in opened:
        term.close()


on_posix = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


@on_posix
def test_progress_shows_on_a_terminal_while_the_run_goes(chain: Path, tmp_path: Path, terminal: Any) -> None:
    gate = tmp_path / "gate"
    term: Terminal = terminal(["run", f"{chain}:flow", "-i", f"gate={gate}", "--run-id", "live"])
    frame = term.read_until(PROGRESS)
    assert term.process.poll() is None  # the run cannot end before the gate opens: this is a live frame
    assert int(frame.group(1)) < 12
    assert re.search(r"running: step_\d+", term.read_until(re.compile(r"running: step_\d+")).group(0))
    gate.touch()
    code, _ = term.finish()
    assert code == 0
    text = term.text
    assert "chain v1, run live" in text
    assert "run succeeded (12 succeeded)" in text
    assert text.rindex("/12 steps") < text.index("chain v1, run live")  # the result comes after the display
    assert sum(1 for line in text.splitlines() if line.startswith("│ step_")) == 12
    assert term.raw.rindex(b"\x1b[?25h") > term.raw.index(b"\x1b[?25l")  # the cursor is shown again


@on_posix
@pytest.mark.parametrize("args", [["--quiet"], ["--json"]], ids=["quiet", "json"])
def test_quiet_and_json_show_no_progress(chain: Path, tmp_path: Path, terminal: Any, args: list[str]) -> None:
    gate = tmp_path / "gate"
    gate.touch()  # the run takes its 1.1 s, well past the display's delay, then ends
    term: Terminal = terminal(["run", f"{chain}:flow", "-i", f"gate={gate}", *args], pipe_stdout="--json" in args)
    code, stdout = term.finish()
    assert code == 0
    assert not PROGRESS.search(term.text)
    assert b"\x1b[?25l" not in term.raw
    if "--json" in args:
        assert term.text == ""
        assert json.loads(stdout)["status"] == "succeeded"
    else:
        assert "run succeeded (12 succeeded)" in term.text


@on_posix
def test_the_display_never_touches_a_piped_stdout(chain: Path, tmp_path: Path, terminal: Any) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    term: Terminal = terminal(["run", f"{chain}:flow", "-i", f"gate={gate}"], pipe_stdout=True)
    code, stdout = term.finish()
    assert code == 0
    assert PROGRESS.search(term.text)  # on the terminal (stderr)...
    assert b"\x1b" not in stdout  # ...and none of it on stdout, which holds just the result
    assert b"/12 steps" not in stdout
    assert b"run succeeded (12 succeeded)" in stdout
