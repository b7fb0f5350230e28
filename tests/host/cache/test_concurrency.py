"""Several processes run cached flows against one cache file at the same time: every run succeeds with
the right outputs, no entry is lost, torn or doubled, and no process sees "database is locked"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flowkernel.host.cache import StepCache

from .flows import calls

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 4
ROUNDS = 5
KEYS = 20


def test_concurrent_processes_share_one_cache_file(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache.db", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.host.cache.concurrent_worker", str(cache), str(log), str(ROUNDS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    expected = {f"[{k}]": k * k for k in range(KEYS)}
    for report in reports:
        for status, outputs, errors in report["runs"]:
            assert (status, errors) == ("succeeded", [])
            assert outputs == {"each": list(expected.values())}
    made = len(calls(log))
    served = sum(report["served"] for report in reports)
    assert made + served == PROCESSES * ROUNDS * KEYS  # every call either ran its tool or was served
    assert KEYS <= made <= PROCESSES * KEYS  # each key computed at least once, by a process at most once:
    assert served >= PROCESSES * (ROUNDS - 1) * KEYS  # its later rounds are served (from whichever stored it)
    with StepCache(cache) as opened:
        stats = opened.stats()
    assert stats.entries == KEYS
    assert stats.hits == served
