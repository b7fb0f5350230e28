"""``flowkernel parity --driver NAME``: prove an installed driver against the oracle and the sync driver
from the command line (a thin shell over :func:`flowkernel.testing.check_driver`).

Exit codes: 0 every example kept parity; 1 one did not (the report shows it shrunk to a minimal flow);
2 the check could not start (a bad option, an unknown driver, hypothesis not installed).
"""

from __future__ import annotations

import shlex
import shutil
import sys

import click

from ..host import installed_drivers
from .common import EXIT_FAILED, EXIT_SUCCEEDED, CannotRunError, driver_named

__all__ = ("parity",)

ORACLE = "oracle"
TESTING_HINT = "pip install 'flowkernel[testing]'"


def parse_limits(text: str) -> tuple[int | None, ...]:
    """``1,2,none`` as concurrency limits; :class:`click.BadParameter` on anything else."""
    limits: list[int | None] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part == "none":
            limits.append(None)
        elif part.isdigit() and int(part) >= 1:
            limits.append(int(part))
        else:
            raise click.BadParameter(
                f"{part!r} is not a limit: give positive integers or 'none', comma-separated (1,2,none)",
                param_hint="'--limits'",
            )
    return tuple(dict.fromkeys(limits))


def parse_against(text: str, tested: str) -> tuple[bool, tuple[str, ...]]:
    """``oracle,sync`` as (compare with the oracle?, the reference drivers' names); every name must be
    'oracle' or an installed driver, and something must be left to compare with."""
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [name for name in names if name != ORACLE and name not in installed_drivers()]
    if unknown:
        installed = ", ".join(installed_drivers()) or "none"
        raise click.BadParameter(
            f"no driver named {', '.join(map(repr, unknown))} is installed (give 'oracle' or one of: {installed})",
            param_hint="'--against'",
        )
    drivers = tuple(name for name in names if name not in (ORACLE, tested))
    if ORACLE not in names and not drivers:
        raise click.BadParameter(
            f"nothing to compare {tested!r} with: name 'oracle' or another driver", param_hint="'--against'"
        )
    return ORACLE in names, drivers


@click.command()
@click.option("-d", "--driver", "driver_name", required=True, metavar="NAME", help="The installed driver to prove.")
@click.option(
    "-n", "--examples", default=100, show_default=True, type=click.IntRange(min=1), help="Scenarios to generate."
)
@click.option("--seed", type=click.IntRange(min=0), help="Fix the scenarios (default: a random seed, printed).")
@click.option(
    "--deadline",
    "deadline_ms",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MS",
    help="Fail an example whose runs take longer than this many milliseconds (default: no deadline).",
)
@click.option(
    "--limits",
    default="1,2,none",
    metavar="LIMITS",
    show_default=True,
    help="The max_concurrency limits to run every scenario at, comma-separated ('none': no limit).",
)
@click.option(
    "--against",
    default=f"{ORACLE},sync",
    metavar="NAMES",
    show_default=True,
    help="What to compare with, comma-separated: 'oracle' (the reference interpreter) and installed drivers.",
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    help="The most steps a generated flow has (default: 6; bigger flows are slower, and slower to shrink).",
)
def parity(
    driver_name: str,
    examples: int,
    seed: int | None,
    deadline_ms: float | None,
    limits: str,
    against: str,
    max_steps: int | None,
) -> None:
    """Prove the driver NAME: run generated flows on it and compare every result with the oracle's and
    the sync driver's, at each concurrency limit.

    On the first divergence, hypothesis shrinks the flow to a minimal one; the report shows that flow,
    where the results first differ, and both results side by side. Exits 0 if every example kept
    parity, 1 if one did not, 2 if the check could not start.
    """
    parsed_limits = parse_limits(limits)
    oracle, reference_names = parse_against(against, driver_name)
    try:
        from ..testing.check import DEFAULT_MAX_STEPS, check_driver
    except ImportError as exc:
        raise CannotRunError(f"the parity check needs {exc.name or 'hypothesis'}: {TESTING_HINT}") from None
    max_steps = max_steps or DEFAULT_MAX_STEPS
    driver = driver_named(driver_name)
    references = {name: driver_named(name) for name in reference_names}
    compared = " and ".join(((ORACLE,) if oracle else ()) + reference_names)
    click.echo(f"checking driver {driver_name!r} against {compared}: {examples} examples...", err=True)
    report = check_driver(
        driver,
        name=driver_name,
        against=references,
        oracle=oracle,
        examples=examples,
        seed=seed,
        deadline_ms=deadline_ms,
        limits=parsed_limits,
        max_steps=max_steps,
    )
    click.echo(report.render(width=shutil.get_terminal_size((120, 24)).columns))
    if report.passed:
        sys.exit(EXIT_SUCCEEDED)
    again = ["flowkernel", "parity", "--driver", driver_name, "--seed", str(report.seed), "--examples", str(examples)]
    again += ["--limits", limits, "--against", against, "--max-steps", str(max_steps)]
    again += [] if deadline_ms is None else ["--deadline", f"{deadline_ms:g}"]
    click.echo(f"\nreproduce with: {shlex.join(again)}")
    sys.exit(EXIT_FAILED)
