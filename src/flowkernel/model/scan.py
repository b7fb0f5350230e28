"""One walk of a step's references: what flow validation and the plan compiler need to know about what a
step refers to, found once per step when a flow is built, instead of once per check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from jmespath.parser import ParsedResult

from .refs import Context, Input, Item, PathError, Ref, compile_path, condition_names

if TYPE_CHECKING:
    from .step import Step

__all__ = (
    "CONTEXT",
    "ITEM",
    "SOURCE",
    "ScannedCondition",
    "StepScan",
    "compiled_condition",
    "field_values",
    "scan_condition",
    "scan_step",
    "scan_steps",
    "walk",
)

SOURCE = 1
"""A value holds a :class:`Ref` or an :class:`Input`."""
ITEM = 2
"""A value holds an :class:`Item`."""
CONTEXT = 4
"""A value holds a :class:`Context`."""


_SOURCES = (Ref, Input)
_SEQUENCES = (list, tuple)
"""Type tuples for ``isinstance``: ``Ref | Input`` written in a function builds a union per call."""


def walk(value: Any, found: list[Ref | Input], locations: list[str] | None = None, location: str = "") -> int:
    """Append to ``found`` every :class:`Ref` or :class:`Input` nested in ``value`` (in lists, tuples and
    dict values, depth first) and tell what ``value`` holds: the union of :data:`SOURCE`, :data:`ITEM`
    and :data:`CONTEXT` (0 for a literal).

    With ``locations``, each source's location is appended there too, built from ``location`` as the walk
    goes down (``arguments.rows`` → ``arguments.rows[1].id``); without, no string is formatted: a flow's
    build asks for the locations (:meth:`Step.sources`) only to report a problem.
    """
    if isinstance(value, _SOURCES):
        found.append(value)
        if locations is not None:
            locations.append(location)
        return SOURCE
    if isinstance(value, Item):
        return ITEM
    if isinstance(value, Context):
        return CONTEXT
    kinds = 0
    if isinstance(value, dict):
        for key, item in value.items():
            kinds |= walk(item, found, locations, "" if locations is None else f"{location}.{key}")
    elif isinstance(value, _SEQUENCES):
        for position, item in enumerate(value):
            kinds |= walk(item, found, locations, "" if locations is None else f"{location}[{position}]")
    return kinds


def compiled_condition(when: str) -> tuple[ParsedResult | None, str | None]:
    """A ``when`` condition compiled, or the error that compiling it raised (``(None, None)`` for ``""``)."""
    try:
        return compile_path(when), None
    except PathError as exc:
        return None, str(exc)


class ScannedCondition(NamedTuple):
    """A step's ``when``, compiled, with what it reads."""

    expression: ParsedResult | None
    """``None`` when the condition is empty or does not parse."""
    error: str | None
    """Why it does not parse, if it does not."""
    steps: frozenset[str] = frozenset()
    """The steps it reads (``steps.<id>``)."""
    inputs: frozenset[str] = frozenset()
    """The flow inputs it reads (``inputs.<name>``)."""
    stray: tuple[str, ...] = ()
    """What else it reads at the document's root (see :func:`~flowkernel.model.refs.condition_names`)."""


def scan_condition(when: str) -> ScannedCondition:
    """Compile ``when`` and find what it reads."""
    expression, error = compiled_condition(when)
    if expression is None:
        return ScannedCondition(None, error)
    names, stray = condition_names(expression)
    return ScannedCondition(expression, None, frozenset(names["steps"]), frozenset(names["inputs"]), tuple(stray))


def field_values(step: Step) -> dict[str, Any]:
    """The step's field values by name, to read many of them: pydantic keeps them in the instance's
    ``__dict__``, and reading them there skips the hook ``BaseModel.__getattr__`` puts on every
    attribute read (CPython cannot specialise one; ~400 instructions a read against ~60). Read only."""
    return step.__dict__


class StepScan(NamedTuple):
    """What one step refers to, from one walk of its map source, arguments and condition."""

    fields: dict[str, Any]
    """The step's field values (:func:`field_values`), for the checks and the plan to read."""
    sources: list[Ref | Input]
    """Every reference, in :meth:`Step.sources` order (the map source first); their locations are not kept."""
    kinds: list[int]
    """For each argument, in order: what it holds (:data:`SOURCE`, :data:`ITEM`, :data:`CONTEXT`; 0 for
    a literal)."""
    holds: int
    """The union of ``kinds``: a flow's build skips the checks of markers no argument holds."""
    condition: ScannedCondition | None
    """The ``when`` condition, if the step has one."""
    depends_on: list[str]
    """The ids the step depends on, through references, ``after`` and its condition, in first-mention
    order (references, then ``after``, then the condition's steps, sorted)."""

    def argument_kinds(self) -> Iterator[tuple[str, Any, int]]:
        """``(name, value, kind)`` for each of the step's arguments."""
        arguments: dict[str, Any] = self.fields["arguments"]
        return zip(arguments, arguments.values(), self.kinds, strict=True)


def scan_step(step: Step) -> StepScan:
    """Walk ``step`` once: its references, what each argument holds, and its condition."""
    fields = field_values(step)
    map_source = fields["map"]
    found: list[Ref | Input] = [] if map_source is None else [map_source]
    kinds = []
    holds = 0
    for value in fields["arguments"].values():
        if type(value) is Ref or type(value) is Input:  # the common argument: no walk
            found.append(value)
            kind = SOURCE
        else:
            kind = walk(value, found)
        kinds.append(kind)
        holds |= kind
    depends_on = [source.step for source in found if isinstance(source, Ref)]
    depends_on.extend(fields["after"])
    when = fields["when"]
    condition = None
    if when is not None:
        condition = scan_condition(when)
        depends_on.extend(sorted(condition.steps))
    if len(depends_on) > 1:
        depends_on = list(dict.fromkeys(depends_on))
    # tuple.__new__ as namedtuple's own _make does: the generated __new__ costs a Python call per step
    return tuple.__new__(StepScan, (fields, found, kinds, holds, condition, depends_on))


def scan_steps(steps: Sequence[Step]) -> list[StepScan]:
    """:func:`scan_step` of each step."""
    return [scan_step(step) for step in steps]
