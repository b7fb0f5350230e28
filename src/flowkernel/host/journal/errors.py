"""The journal's own errors, beside those of :mod:`flowkernel.errors` (all are :class:`JournalError`)."""

from __future__ import annotations

from ...errors import JournalError, JournalWriteError

__all__ = ("RunLeasedError", "UnstorableValueError", "UntrustedJournalError")


class UntrustedJournalError(JournalError):
    """The journal stores pickles (written by an older flowkernel, or opened ``trusted=True``): reading
    one can run any code, so it is refused unless the journal is opened with ``trusted=True``."""


class UnstorableValueError(JournalWriteError):
    """A value cannot be stored by the journal's codec (a type it has no tag for, a pydantic model not in
    its allowlist); the message names the value's type and where it sits."""


class RunLeasedError(JournalError):
    """The run is being executed elsewhere: another process (or another run in this one) holds its lease.

    ``holder`` describes the holder (host, process id) and ``expires`` when its lease runs out unless it
    renews it (seconds since the epoch)."""

    def __init__(self, message: str, holder: str = "", expires: float = 0.0) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires = expires
