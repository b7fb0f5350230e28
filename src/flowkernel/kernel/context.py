"""Accumulated context: the outputs of a step's ancestors merged in declaration order (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

__all__ = ("merge_context",)


def merge_context(
    contributions: Iterable[tuple[str, Any]], collision: str
) -> tuple[dict[str, Any], list[str], str | None]:
    """Merge ``(step id, output)`` pairs, in the order given: the context, its warnings, and the
    collision that stops it under the ``error`` policy (else ``None``)."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    warnings: list[str] = []
    for step_id, output in contributions:
        value = output.model_dump() if isinstance(output, BaseModel) else output
        for key, item in value.items() if isinstance(value, dict) else ((step_id, value),):
            if key in merged:
                message = f"context key {key!r} from {step_id!r} replaces the one from {origin[key]!r}"
                if collision == "error":
                    return merged, warnings, message
                if collision == "warn":
                    warnings.append(message)
            merged[key] = item
            origin[key] = step_id
    return merged, warnings, None
