"""The JSON text of the usual journal entry, written directly: calls that returned plain values.

Nearly every entry of a run is a batch of :class:`~flowkernel.protocol.Returned` whose values are
text, integers, booleans, ``None`` or finite floats. The codec's general path turns a batch into tagged
objects (``{"$tuple": [{"$returned": [...]}]}``) and then into text with :mod:`json`; this writes the
same text, byte for byte, in one pass: about half of the codec's cost per entry. Anything else (another
completion, a value of another type, a time that is not a finite float) is left to the general path.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

from ...protocol import Returned

__all__ = ("returned_batch_text",)

_INF = float("inf")
_LITERALS = {None: "null", True: "true", False: "false"}


def returned_batch_text(batch: Any) -> str | None:
    """``batch`` as the codec writes it (``json.dumps`` with ``ensure_ascii=False`` and no spaces), when
    it is a tuple of calls that returned plain values; ``None`` for the general path to write it."""
    if type(batch) is not tuple:
        return None
    parts = []
    for completion in batch:
        if type(completion) is not Returned:
            return None
        call_id, value, started, finished, cached = completion
        if type(call_id) is not str or type(started) is not float or type(finished) is not float:
            return None
        if not (-_INF < started < _INF and -_INF < finished < _INF):  # nan and infinities are tagged
            return None
        kind = type(value)
        if kind is int:
            text = int.__repr__(value)
        elif kind is str:
            text = encode_basestring(value)
        elif kind is float and -_INF < value < _INF:
            text = float.__repr__(value)
        elif value is None or kind is bool:
            text = _LITERALS[value]
        else:
            return None
        mark = ",true" if cached else ""
        parts.append(f'{{"$returned":[{encode_basestring(call_id)},{text},{started!r},{finished!r}{mark}]}}')
    return '{"$tuple":[' + ",".join(parts) + "]}"
