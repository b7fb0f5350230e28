"""Run leases in the SQLite journal: which process executes a run (its row's holder and expiry), so a
second resumer is refused at once and a run whose holder died is taken over. Kept apart from the store
(:mod:`.sqlite`), which calls these on its connection, under its lock.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Collection
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...errors import RunNotFoundError
from ..sqlite_files import immediate
from .errors import RunLeasedError

__all__ = (
    "describe_holder",
    "lease_over",
    "new_holder",
    "no_run",
    "refuse_if_leased",
    "release_lease",
    "renew_leases",
    "start_renewing",
    "take_lease",
)

_HOST = socket.gethostname()


def new_holder() -> str:
    """A holder token for one journal object: its host, its process id and a random part (a run's lease
    adds the run id)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def take_lease(db: sqlite3.Connection, path: Path, run_id: str, holder: str, lease: float) -> None:
    """Lease run ``run_id`` to ``holder`` for ``lease`` seconds, in a transaction of its own:
    :class:`RunLeasedError` if a live holder has it; a dead holder's lease is taken over."""
    with immediate(db):
        row = db.execute("SELECT lease_holder, lease_expires FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise no_run(path, run_id)
        current, expires = row
        why = "; resume it once that run has ended, or once its holder is gone"
        refuse_if_leased(path, run_id, current, expires, (holder,), why)
        db.execute(
            "UPDATE runs SET lease_holder = ?, lease_expires = ? WHERE run_id = ?",
            (holder, time.time() + lease, run_id),
        )


def refuse_if_leased(
    path: Path, run_id: str, current: str | None, expires: Any, own: Collection[str], why: str
) -> None:
    """:class:`RunLeasedError` if a live holder other than one of ``own`` has run ``run_id``'s lease
    (``why`` ends the message: what cannot be done now, or what to do)."""
    if current is not None and current not in own and not lease_over(current, expires, time.time()):
        until = datetime.fromtimestamp(float(expires), UTC)
        raise RunLeasedError(
            f"{path}: run {run_id!r} is being executed elsewhere (by {describe_holder(current)}, its lease"
            f" renewed until {until:%Y-%m-%d %H:%M:%S} UTC){why}",
            current,
            float(expires),
        )


def no_run(path: Path, run_id: str) -> RunNotFoundError:
    """The error for a run id the journal at ``path`` does not hold."""
    return RunNotFoundError(f"{path} holds no run {run_id!r} (see: flowkernel runs {path})")


def release_lease(db: sqlite3.Connection, run_id: str, holder: str) -> None:
    """Clear run ``run_id``'s lease if ``holder`` still has it."""
    db.execute(
        "UPDATE runs SET lease_holder = NULL, lease_expires = NULL WHERE run_id = ? AND lease_holder = ?",
        (run_id, holder),
    )


def renew_leases(db: sqlite3.Connection, leases: dict[str, str], lease: float) -> None:
    """Push back the expiry of every lease in ``leases`` (run id -> holder) to ``lease`` seconds from now;
    a lease taken over meanwhile is dropped from ``leases`` (appends will say so)."""
    expires = time.time() + lease
    for run_id, holder in list(leases.items()):
        cursor = db.execute(
            "UPDATE runs SET lease_expires = ? WHERE run_id = ? AND lease_holder = ?", (expires, run_id, holder)
        )
        if cursor.rowcount != 1:
            leases.pop(run_id, None)


def start_renewing(renew: Callable[[], None], closed: threading.Event, every: float) -> threading.Thread:
    """Start a daemon thread that calls the bound method ``renew`` every ``every`` seconds until ``closed``
    is set or its object is collected (the thread holds it only weakly)."""
    thread = threading.Thread(target=_renew_until, args=(weakref.WeakMethod(renew), closed, every), daemon=True)
    thread.start()
    return thread


def _renew_until(renew: weakref.WeakMethod[Callable[[], None]], closed: threading.Event, every: float) -> None:
    """The renewing thread: pushes back the journal's leases until it is closed or collected."""
    while not closed.wait(every):
        target = renew()
        if target is None:
            return
        with suppress(Exception):  # a failed renewal is retried; if the lease lapses, appends say so
            target()
        del target


def lease_over(holder: str, expires: Any, now: float) -> bool:
    """Whether a lease can be taken over: it expired, or its holder was a process of this host that is gone."""
    if type(expires) is not float or expires < now:
        return True
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process: another journal object, or another run, in it still holds the lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process)
        return False
    return False


def describe_holder(holder: str) -> str:
    """A lease holder for messages: its process and host."""
    host, _, rest = holder.partition(":")
    return f"process {rest.partition(':')[0]} on {host}"
