"""``flowkernel validate FILE`` (every problem of a flow file, with line and column) and ``flowkernel
schema`` (the JSON Schema of flow files)."""

from __future__ import annotations

import json
import sys

import click

from ..errors import ConfigError
from .common import EXIT_SUCCEEDED, EXIT_USAGE, allow_module_option, allowed_modules

__all__ = ("schema", "validate")


@click.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@allow_module_option
def validate(path: str) -> None:
    """Check the flow file FILE (.yaml, .yml, .json) and list every problem, each as FILE:LINE:COLUMN:
    the format, tools that cannot be found or whose module is not allowed, references, cycles, sub-flow
    files. Exits 0 when the file loads, 2 otherwise. Nothing but allowed modules is imported."""
    from ..files import check_flow_file, configured_allow_modules

    try:
        allowed = (*allowed_modules(), *configured_allow_modules())
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    problems = check_flow_file(path, allow_modules=allowed)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        count = len(problems)
        click.echo(f"{path}: {count} problem{'s' * (count != 1)}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{path}: ok", err=True)
    sys.exit(EXIT_SUCCEEDED)


@click.command()
def schema() -> None:
    """Print the JSON Schema of flow files (for editors: yaml-language-server, VS Code's json.schemas)."""
    from ..files import flow_file_schema

    click.echo(json.dumps(flow_file_schema(), indent=2))
