"""``flowkernel parity``: a deliberately broken driver, installed through a real ``flowkernel.drivers``
entry point (a package and its ``.dist-info`` on the path, as pip would leave them), is caught and shown
shrunk to a minimal flow; an honest driver passes; a bad command line exits 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowkernel.cli.app import cli
from flowkernel.cli.parity import parse_limits
from flowkernel.host import installed_drivers

pytest.importorskip("hypothesis", reason="the parity check needs hypothesis (flowkernel[testing])")

BROKEN_DRIVER = Path(__file__).resolve().parents[1] / "testing" / "off_by_one.py"


@pytest.fixture
def broken_install(tmp_path: Path) -> Path:
    """A directory holding the package ``brokenpkg`` and its metadata, which registers its driver as
    ``broken`` in the ``flowkernel.drivers`` group: put it on PYTHONPATH and the driver is installed."""
    package = tmp_path / "brokenpkg"
    package.mkdir()
    shutil.copy(BROKEN_DRIVER, package / "__init__.py")
    dist_info = tmp_path / "brokenpkg-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenpkg\nVersion: 0.1\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(
        "[flowkernel.drivers]\nbroken = brokenpkg:OffByOneDriver\n", encoding="utf-8"
    )
    return tmp_path


def flowkernel(*args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m flowkernel ARGS`` in a fresh process, with ``path`` first on its PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path or ""), env.get("PYTHONPATH", "")) if p)
    env["COLUMNS"] = "100"
    return subprocess.run(
        [sys.executable, "-m", "flowkernel", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_the_broken_driver_is_installed_through_its_entry_point(broken_install: Path) -> None:
    listed = flowkernel("drivers", path=broken_install)
    assert listed.returncode == 0, listed.stderr
    assert "broken" in listed.stdout.split()
    assert "broken" not in installed_drivers()  # only where its metadata is on the path


def test_a_broken_driver_is_caught_and_shown_shrunk_to_a_minimal_flow(broken_install: Path) -> None:
    done = flowkernel(
        "parity", "--driver", "broken", "--examples", "10", "--seed", "1", "--limits", "1", path=broken_install
    )
    out = done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    assert out.startswith("parity BROKEN: driver 'broken' against oracle and sync, ")
    assert "limits 1, seed 1" in out.splitlines()[0]
    # shrunk: one step whose one call succeeds (the driver lies about every returned value)
    flow = out[out.index("minimal flow:") :].splitlines()[1:4]
    assert flow[0].startswith("flow 'generated': 1 step, inputs {")
    assert flow[1] == "  s0: sync tool scripted_s0"
    assert flow[2] == "      calls: attempt 1 succeeds"
    assert "broken (max_concurrency=1) disagrees with oracle" in out
    first = re.search(r"first difference at (\S+):\n  oracle: (\d+)\n  broken \(max_concurrency=1\): (\d+)", out)
    assert first is not None, out
    assert first[1] == "result.outputs.s0.n"
    assert int(first[3]) == int(first[2]) + 1
    # both results, side by side, the changed line marked between them
    header = next(line for line in out.splitlines() if line.startswith("oracle "))
    assert header.split() == ["oracle", "broken", "(max_concurrency=1)"]
    changed = [line for line in out.splitlines() if re.search(r"\s\|\s", line)]
    assert changed
    assert all(line.count('"n":') == 2 for line in changed)
    assert re.fullmatch(rf'\s+"n": {first[2]}\s+\|\s+"n": {first[3]}', changed[0])
    reproduce = "reproduce with: flowkernel parity --driver broken --seed 1 --examples 10 --limits 1"
    assert reproduce in out


def test_the_sync_driver_keeps_parity() -> None:
    done = flowkernel("parity", "--driver", "sync", "--examples", "3", "--seed", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        done.stdout.strip() == "parity kept: driver 'sync' against oracle, 3 examples passed, limits 1,2,none, seed 2"
    )
    assert "checking driver 'sync' against oracle: 3 examples" in done.stderr


def test_an_unknown_driver_is_a_usage_error_listing_the_installed_ones() -> None:
    result = CliRunner().invoke(cli, ["parity", "--driver", "nope", "--examples", "1"])
    assert result.exit_code == 2
    assert "no driver named 'nope' is installed" in result.output
    assert f"installed: {', '.join(installed_drivers())}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limits", "1,zero"], "'zero' is not a limit"),
        (["--limits", "0"], "'0' is not a limit"),
        (["--against", "oracle,nope"], "no driver named 'nope' is installed"),
        (["--against", "sync"], "nothing to compare 'sync' with"),
        (["--examples", "0"], "--examples"),
        (["--deadline", "-5"], "--deadline"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["parity", "--driver", "sync", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1  # one line, no traceback


def test_limits_parse_in_order_without_repeats() -> None:
    assert parse_limits("2, none,1,2") == (2, None, 1)
