"""The pure kernel: a generator state machine with no I/O, clock, randomness or concurrency."""

from .options import RunOptions
from .run import RunState, run_flow

__all__ = ("RunOptions", "RunState", "run_flow")
