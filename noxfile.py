"""Developer tasks: ``nox`` runs lint, typecheck, tests, property and docs; ``nox -s bench`` the benchmarks.

Property tests run ``FLOWKERNEL_PROPERTY_EXAMPLES`` examples each (default sized for CI); set it to
thousands for a long run, e.g. ``FLOWKERNEL_PROPERTY_EXAMPLES=2000 nox -s property``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "property", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
DEV = ("-r", "requirements-dev.txt")
CODE = ("src", "drivers", "tests", "property_tests", "benchmarks", "examples", "noxfile.py", "conftest.py")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.5")
    session.run("ruff", "check", *CODE)
    session.run("ruff", "format", "--check", *CODE)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library and the drivers."""
    session.install(*DEV)
    session.run("mypy", "src", "drivers/sync/src", "drivers/asyncio/src", "drivers/trio/src", "drivers/dask/src")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, driver and end-to-end tests."""
    session.install(*DEV)
    session.run("pytest", "tests", *session.posargs)


@nox.session(python=PYTHON)
def property(session: nox.Session) -> None:
    """The parity suite and the kernel state machine (hypothesis)."""
    session.install(*DEV)
    session.run("pytest", "property_tests", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site: ``mkdocs build --strict`` fails on any warning (a broken link or anchor, a page
    left out of the navigation, a docstring mkdocstrings cannot render); the diagrams must be current."""
    session.install(*DEV)
    session.run("python", "docs/generate.py", "--check")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", f"{session.create_tmp()}/site", env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks, each printing a ratio against a baseline measured in the same run."""
    session.install(*DEV)
    session.run("python", "benchmarks/run.py", *session.posargs)
