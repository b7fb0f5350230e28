"""The step cache commands: ``cache stats`` shows what a cache file holds, ``cache clear`` empties it
(all of it, one tool's entries, or the expired ones)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import CacheError
from .common import CannotRunError

if TYPE_CHECKING:  # SQLite loads when a command opens the cache, not when the command line starts
    from ..host.cache import CacheStats, StepCache

__all__ = ("CACHE_HELP", "cache", "cache_for_run")

CACHE_HELP = "Serve the calls of tools and steps with a cache policy from this step cache file (created if missing)."

cache_option = click.option(
    "--cache",
    "cache_path",
    metavar="FILE",
    required=True,
    envvar="FLOWKERNEL_CACHE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The step cache file (default: $FLOWKERNEL_CACHE).",
)


@click.group()
def cache() -> None:
    """Inspect or clear a step cache file (the results runs given cache=StepCache(FILE) reuse)."""


@cache.command()
@cache_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of a table.")
def stats(cache_path: Path, as_json: bool) -> None:
    """Show how many entries the cache holds (how many expired), the hits served, its size, per tool."""
    with opened(cache_path) as store:
        figures = store.stats()
    if as_json:
        click.echo(json.dumps(_stats_dict(figures), indent=2))
    else:
        _render(figures)


@cache.command()
@cache_option
@click.option("--tool", "tool_name", metavar="NAME", help="Only the entries of this tool.")
@click.option("--expired", is_flag=True, help="Only the entries whose time-to-live has run out.")
def clear(cache_path: Path, tool_name: str | None, expired: bool) -> None:
    """Delete the cache's entries: all of them, or those of --tool NAME, or the --expired ones (or both)."""
    with opened(cache_path) as store:
        removed = store.clear(tool=tool_name, expired=expired)
    which = ("expired " if expired else "") + ("entry" if removed == 1 else "entries")
    of_tool = f" of tool {tool_name!r}" if tool_name is not None else ""
    click.echo(f"removed {removed} {which}{of_tool} from {cache_path}")


@contextmanager
def opened(path: Path) -> Iterator[StepCache]:
    """The cache at ``path``; a file that is not one (or is damaged) is a one-line error and exit 2."""
    from ..host.cache import StepCache

    try:
        with StepCache(path) as store:
            yield store
    except CacheError as exc:
        raise CannotRunError(str(exc)) from None


def cache_for_run(path: Path | None) -> StepCache | None:
    """The cache ``run --cache FILE`` uses (created if missing; closed when the process ends)."""
    if path is None:
        return None
    from ..host.cache import StepCache

    try:
        return StepCache(path)
    except CacheError as exc:
        raise CannotRunError(str(exc)) from None


def _stats_dict(figures: CacheStats) -> dict[str, object]:
    return {**figures._asdict(), "tools": [tool._asdict() for tool in figures.tools]}


def _render(figures: CacheStats) -> None:
    from rich.console import Console  # rich only for a table: stats --json, and run --cache, never load it
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    summary = (
        f"{figures.path}: {figures.entries} entries ({figures.expired} expired), "
        f"{figures.hits} hits served, {figures.file_bytes:,} bytes on disk"
    )
    console.print(Text(summary), soft_wrap=True)  # a path with [/b] in it is not markup
    if not figures.tools:
        return
    table = Table()
    for header in ("tool", "entries", "expired", "hits", "value bytes"):
        table.add_column(header, justify="left" if header == "tool" else "right", no_wrap=True)
    for tool in figures.tools:
        table.add_row(Text(tool.tool), str(tool.entries), str(tool.expired), str(tool.hits), f"{tool.value_bytes:,}")
    console.print(table)
