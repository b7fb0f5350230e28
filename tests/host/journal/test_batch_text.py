"""The usual entry written directly: byte for byte what the codec's general path writes, and read back
as it was; anything else is left to the general path."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowkernel import Cancelled, Raised, Returned
from flowkernel.host.journal import JsonCodec
from flowkernel.host.journal.batch_text import returned_batch_text
from flowkernel.host.journal.codec import _ENCODER
from flowkernel.result import ErrorInfo, ErrorKind

CODEC = JsonCodec()

plain = st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**200), max_value=2**200) | st.text()
numbers = st.floats(allow_nan=True, allow_infinity=True)
returned = st.builds(Returned, st.text(), plain | numbers, numbers, numbers, st.booleans())


def general(batch: Any) -> bytes:
    """What the codec's tagged objects and :mod:`json` make of ``batch``."""
    return _ENCODER.encode(CODEC._encode(batch, "a batch")).encode()


@given(st.lists(returned, max_size=4).map(tuple))
def test_a_batch_of_plain_returns_is_the_general_paths_text(batch: tuple[Returned, ...]) -> None:
    text = returned_batch_text(batch)
    finite = all(math.isfinite(c.started) and math.isfinite(c.finished) for c in batch)
    finite = finite and all(type(c.value) is not float or math.isfinite(c.value) for c in batch)
    if not finite:  # tagged (a value) or refused (a time) by the general path
        assert text is None
        return
    assert text is not None
    assert text.encode() == general(batch)
    assert CODEC.dumps(batch, "a batch") == general(batch)
    assert CODEC.loads(text.encode(), "a batch") == batch


def test_other_batches_take_the_general_path() -> None:
    error = ErrorInfo(ErrorKind.TOOL, "ValueError", "no", "s", None, {})
    for batch in [
        (Returned("a@1", [1, 2], 0.0, 1.0),),  # a list: its items may need tags
        (Returned("a@1", {"$k": 1}, 0.0, 1.0),),  # a dict whose key must be tagged
        (Returned("a@1", 1, 0, 1),),  # integer times
        (Returned("a@1", 1.5, 0.0, 1.0), Raised("b@1", error, 0.0, 1.0)),  # another completion
        (Cancelled("a@1"),),
        [Returned("a@1", 1, 0.0, 1.0)],  # not a tuple
    ]:
        assert returned_batch_text(batch) is None, batch
        assert CODEC.loads(CODEC.dumps(batch, "a batch"), "a batch") == batch
