"""Several runs journaling into one SQLite file at once: threads, asyncio tasks, two processes.

Whatever the interleaving of their writes, each run's record replays to its own result, every run is
listed as finished, and each run's entries are numbered 0, 1, 2... with nothing of another run in them.
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from flowkernel import ExecutionResult
from flowkernel.host import installed_drivers, load_driver
from flowkernel.host.journal import SqliteJournal, replay

from . import concurrent_worker

RUNS = 6
TIMEOUT = 30.0
FLOW = concurrent_worker.build_flow()
CALLS_PER_RUN = 1 + concurrent_worker.FAN + 4 + 1  # source, the fan-out, 4 map elements, total


def check_journal(
    path: Path, results: dict[str, dict[str, Any]], overlapping: tuple[str, str] | None = ("", "")
) -> None:
    """Each run (run id -> canonical result; run ``x<k>`` had inputs ``{"n": k}``) replays to its result,
    is listed finished, and has consecutive entries holding each of its calls' completions once."""
    with SqliteJournal(path) as journal:
        listed = {summary.run_id: summary for summary in journal.runs()}
        assert sorted(listed) == sorted(results)
        for run_id, expected in results.items():
            assert replay(FLOW, journal, run_id).canonical() == expected, run_id
            recorded = journal.load(run_id)
            assert [entry.seq for entry in recorded.entries] == list(range(len(recorded.entries))), run_id
            calls = [c.call_id for entry in recorded.entries for c in entry.completions]
            assert len(calls) == len(set(calls)) == CALLS_PER_RUN, run_id
            assert recorded.header.inputs == {"n": int(run_id[1:])}, run_id
            summary = listed[run_id]
            assert (summary.status, summary.steps_done, summary.entries) == (
                "succeeded",
                len(FLOW.steps),
                len(recorded.entries),
            ), run_id
            assert summary.finished is not None
    # The runs did write at the same time (else this test would prove nothing): two of them overlapped,
    # one whose id starts with overlapping[0], one with overlapping[1].
    if overlapping is None:
        return
    first, second = overlapping
    assert any(
        a.started < b.finished and b.started < a.finished  # type: ignore[operator]
        for a in listed.values()
        for b in listed.values()
        if a is not b and a.run_id.startswith(first) and b.run_id.startswith(second)
    ), "no two runs overlapped"


@pytest.fixture(params=["one shared instance", "an instance per run"])
def journal_for(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SqliteJournal]]:
    """Journals on one path (``tmp_path / "journal.db"``, not created yet): the same instance for every
    run, or a new one for each (all opened at once, racing to create the file)."""
    path = tmp_path / "journal.db"
    with ExitStack() as stack:
        if request.param == "one shared instance":
            shared = stack.enter_context(SqliteJournal(path))
            yield lambda: shared
        else:
            lock = threading.Lock()

            def new() -> SqliteJournal:
                journal = SqliteJournal(path)
                with lock:
                    stack.callback(journal.close)
                return journal

            yield new


def test_threads_of_the_sync_driver(journal_for: Callable[[], SqliteJournal], tmp_path: Path) -> None:
    driver = load_driver("sync")
    start = threading.Barrier(RUNS)
    results: dict[str, ExecutionResult] = {}
    failures: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait(TIMEOUT)
            journal = journal_for()
            results[f"t{k}"] = driver.run_blocking(FLOW, {"n": k}, journal=journal, run_id=f"t{k}", max_concurrency=3)
        except BaseException as exc:  # re-raised by the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "runs did not finish"
    if failures:
        raise failures[0]
    check_journal(tmp_path / "journal.db", {run_id: result.canonical() for run_id, result in results.items()})


def test_tasks_of_the_asyncio_driver(journal_for: Callable[[], SqliteJournal], tmp_path: Path) -> None:
    if "asyncio" not in installed_drivers():
        pytest.skip("the asyncio driver is not installed")
    driver: Any = load_driver("asyncio")

    async def run(k: int) -> ExecutionResult:
        journal = await asyncio.to_thread(journal_for)
        result: ExecutionResult = await driver.run(FLOW, {"n": k}, journal=journal, run_id=f"a{k}", max_concurrency=3)
        return result

    async def main() -> list[ExecutionResult]:
        async with asyncio.timeout(TIMEOUT):
            return await asyncio.gather(*(run(k) for k in range(RUNS)))

    results = asyncio.run(main())
    check_journal(tmp_path / "journal.db", {f"a{k}": result.canonical() for k, result in enumerate(results)})


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes")
@pytest.mark.parametrize("fresh", [True, False], ids=["a new file", "an existing journal"])
def test_two_processes(fresh: bool, tmp_path: Path) -> None:
    """Two processes, each with several runs in threads, start writing one journal file at once."""
    path = tmp_path / "journal.db"
    if not fresh:
        SqliteJournal(path).close()
    worker = Path(concurrent_worker.__file__)
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), str(path), prefix, "4"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("p", "q")
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert select.select([process.stdout], [], [], TIMEOUT)[0], "the worker did not start"
            assert process.stdout.readline() == "ready\n", process.communicate()[1]
        for process in processes:  # both at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
            process.stdin = None  # so communicate() does not flush a closed pipe
        outputs = [process.communicate(timeout=TIMEOUT) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    results: dict[str, dict[str, Any]] = {}
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        for line in out.splitlines():
            run_id, text = line.split(" ", 1)
            results[run_id] = json.loads(text)
    assert sorted(results) == ["p0", "p1", "p2", "p3", "q0", "q1", "q2", "q3"]
    check_journal(path, results, overlapping=("p", "q"))


def test_opening_the_file_again_keeps_the_locks_this_process_holds(tmp_path: Path) -> None:
    """A second ``SqliteJournal`` on the file in this process must not drop the first one's locks (closing
    any descriptor of a file drops all of a process's POSIX locks on it). Else another process that
    comes and goes takes itself for the file's last user and deletes the WAL, entries and all."""
    path = tmp_path / "journal.db"
    driver = load_driver("sync")
    results = {}
    with SqliteJournal(path) as first:
        results["a1"] = driver.run_blocking(FLOW, {"n": 1}, journal=first, run_id="a1")
        with SqliteJournal(path) as second:
            visit = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('SELECT * FROM runs').connection.close()"
            subprocess.run([sys.executable, "-c", visit, str(path)], check=True, timeout=TIMEOUT)
            assert path.with_name("journal.db-wal").exists(), "another process deleted the WAL in use"
            results["a2"] = driver.run_blocking(FLOW, {"n": 2}, journal=second, run_id="a2")
        results["a3"] = driver.run_blocking(FLOW, {"n": 3}, journal=first, run_id="a3")
    check_journal(path, {run_id: result.canonical() for run_id, result in results.items()}, overlapping=None)
