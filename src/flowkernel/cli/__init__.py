"""The ``flowkernel`` command line: ``run MODULE:FLOW|FILE`` (optionally ``--journal``), ``resume``, ``runs``,
``show``, ``delete``, ``graph``, ``validate``, ``schema``, ``cache``, ``serve``, ``parity`` and ``drivers``.

click and rich come with the ``cli`` extra; they are imported only when the command runs, so
``import flowkernel`` never needs them and a missing one gets a one-line hint instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ("INSTALL_HINT", "main")

INSTALL_HINT = "pip install 'flowkernel[cli]'"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); exits with the command's code."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "click"
        print(f"flowkernel: the command line needs {missing}: {INSTALL_HINT}", file=sys.stderr)
        sys.exit(2)
    from .app import cli

    cli.main(args=list(argv) if argv is not None else None, prog_name="flowkernel")
