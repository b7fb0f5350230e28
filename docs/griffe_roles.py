"""A griffe extension for the API reference: the docstrings' Sphinx roles (``:class:`~a.b.C```) as code.

The code's docstrings name other objects the Sphinx way; Markdown would show the role literally. Each
becomes a code span of the name as Sphinx shows it (``~`` keeps the last part only).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj):`(?P<tilde>~?)(?P<name>[^`]+)`")


def _as_code(match: re.Match[str]) -> str:
    name = match["name"]
    return f"`{name.rsplit('.', 1)[-1] if match['tilde'] else name}`"


class SphinxRolesAsCode(griffe.Extension):
    """Rewrites every docstring's roles when griffe loads the object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_as_code, obj.docstring.value)
