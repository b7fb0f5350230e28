"""Checks of a step's arguments against what it calls: the tool's signature or input model (names, and the
literals' types), or the sub-flow's inputs. What a check needs from a tool or model is worked out once
per flow build (:class:`ToolFacts`), not once per step: tools repeat across a flow's steps."""

from __future__ import annotations

import difflib
import inspect
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, PydanticUserError, ValidationError

from ..errors import Problem
from .json_schema import SchemaArguments
from .scan import StepScan, walk
from .signature import SignatureArguments
from .step import Step
from .tool import IDEMPOTENCY_KEY, Tool

__all__ = (
    "MAX_FLOW_DEPTH",
    "ToolFacts",
    "argument_problems",
    "model_argument_problems",
    "unknown",
    "validated_literal_problems",
)

MAX_FLOW_DEPTH = 16
"""How deep sub-flows may nest (flows are immutable, so a flow cannot contain itself: no cycle can be
built; this bounds the rest)."""


def unknown(kind: str, name: str, known: Iterable[str], suffix: str = "") -> str:
    """``unknown <kind> '<name>'<suffix>``, with the closest known name as a hint."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{suffix}{hint}"


@dataclass(frozen=True, slots=True)
class _Signature:
    """A tool's function signature as the checks of a step's argument names read it."""

    tool: str
    """The tool's name, for messages."""
    required: tuple[tuple[str, bool], ...]
    """``(name, positional_only)`` for each parameter without a default that is positional-only or
    passed by keyword, in the signature's order."""
    by_keyword: frozenset[str]
    """The names a step may pass (without the idempotency key the driver fills in)."""
    takes_any: bool
    """``**kwargs``: any other name is accepted too."""
    driver_fills_key: bool
    """The tool receives its idempotency key from the driver; a step cannot set it."""
    required_names: frozenset[str]
    """The names in ``required`` (when none is positional-only)."""
    takes_positional_only: bool
    """A parameter without a default is positional-only: every step calling the tool has a problem."""

    @classmethod
    def of(cls, tool: Tool) -> _Signature | None:
        """``None`` when the function has no introspectable signature (builtins, some callables)."""
        try:
            parameters = list(inspect.signature(tool.fn).parameters.values())
        except (TypeError, ValueError):
            return None
        by_keyword = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if tool.idempotency_key:
            by_keyword.discard(IDEMPOTENCY_KEY)
        required = tuple(
            (p.name, p.kind is p.POSITIONAL_ONLY)
            for p in parameters
            if p.default is p.empty and (p.kind is p.POSITIONAL_ONLY or p.name in by_keyword)
        )
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        return cls(
            tool.name,
            required,
            frozenset(by_keyword),
            takes_any,
            tool.idempotency_key,
            frozenset(name for name, _ in required),
            any(positional_only for _, positional_only in required),
        )

    def accepts(self, arguments: Mapping[str, Any]) -> bool:
        """Whether :meth:`problems` finds nothing, asked with two set comparisons instead of a loop per
        name: the fast path for the steps that fit (most of them; tests/model/test_arguments.py checks
        that the two agree)."""
        names = arguments.keys()
        return (
            not self.takes_positional_only
            and self.required_names <= names
            and (self.takes_any or names <= self.by_keyword)
            and not (self.driver_fills_key and IDEMPOTENCY_KEY in names)
        )

    def problems(self, arguments: Mapping[str, Any]) -> Iterator[Problem]:
        """Argument names that do not fit the signature, each on its own (located in the step)."""
        if self.driver_fills_key and IDEMPOTENCY_KEY in arguments:
            yield Problem(
                f"arguments.{IDEMPOTENCY_KEY}",
                f"tool {self.tool!r} receives its {IDEMPOTENCY_KEY!r} from the driver; a step cannot set it",
            )
            arguments = {name: value for name, value in arguments.items() if name != IDEMPOTENCY_KEY}
        for name, positional_only in self.required:
            if positional_only:
                yield Problem(
                    "arguments",
                    f"tool {self.tool!r} has a positional-only parameter {name!r}; tools are called with keywords",
                )
            elif name not in arguments:
                yield Problem("arguments", f"missing required argument {name!r} of tool {self.tool!r}")
        if not self.takes_any:
            for name in arguments:
                if name not in self.by_keyword:
                    yield Problem(
                        f"arguments.{name}", unknown("argument", name, self.by_keyword, f" of tool {self.tool!r}")
                    )


@dataclass(frozen=True, slots=True)
class _ModelNames:
    """An input model's argument names as the checks of a step's argument names read them."""

    known: Sequence[str]
    required: Sequence[str]
    open: bool
    """The model takes names beyond ``known`` (``extra="allow"``)."""
    known_set: frozenset[str]
    required_set: frozenset[str]

    @classmethod
    def of(cls, model: type[BaseModel]) -> _ModelNames:
        if issubclass(model, SchemaArguments):
            known, required, open_names = model.names()
        else:
            fields = model.model_fields
            known, open_names = list(fields), model.model_config.get("extra") == "allow"
            required = [name for name, field in fields.items() if field.is_required()]
        return cls(known, required, open_names, frozenset(known), frozenset(required))

    def accepts(self, arguments: Mapping[str, Any]) -> bool:
        """Whether :meth:`problems` finds nothing, asked with set comparisons: the fast path for the
        steps that fit (tests/model/test_arguments.py checks that the two agree)."""
        names = arguments.keys()
        return (self.open or names <= self.known_set) and self.required_set <= names

    def problems(self, tool: str, arguments: Mapping[str, Any]) -> Iterator[Problem]:
        """Argument names the model does not know, and the ones it requires that are missing (located
        in the step)."""
        if not self.open:
            for name in arguments:
                if name not in self.known:
                    yield Problem(f"arguments.{name}", unknown("argument", name, self.known, f" of tool {tool!r}"))
        for name in self.required:
            if name not in arguments:
                yield Problem("arguments", f"missing required argument {name!r} of tool {tool!r}")


_signatures: dict[int, tuple[weakref.ref[Tool], _Signature | None]] = {}
"""Each tool's signature facts, by ``id(tool)`` while the tool lives: reading a signature is about a
quarter of a one-step flow's build (cProfile), and the same tools build flow after flow. A tool is frozen,
so its facts cannot go stale."""


def _signature_of(tool: Tool) -> _Signature | None:
    key = id(tool)
    cached = _signatures.get(key)
    if cached is not None and cached[0]() is tool:
        return cached[1]
    signature = _Signature.of(tool)
    _signatures[key] = (weakref.ref(tool, lambda _: _signatures.pop(key, None)), signature)
    return signature


class ToolFacts:
    """What the argument checks need from each tool and input model, worked out on first use and kept
    for one flow's build (a dict by ``id(tool)``: the flow's steps hold the tools while it is built);
    a tool's signature is kept while the tool lives (:func:`_signature_of`). Models are asked again
    for each build: ``model_rebuild()`` may make an unusable one usable."""

    def __init__(self) -> None:
        self._signatures: dict[int, _Signature | None] = {}
        self._names: dict[type[BaseModel], _ModelNames] = {}
        self._unusable: dict[type[BaseModel], str | None] = {}

    def signature(self, tool: Tool) -> _Signature | None:
        key = id(tool)
        if key not in self._signatures:
            self._signatures[key] = _signature_of(tool)
        return self._signatures[key]

    def fits(self, scan: StepScan) -> bool:
        """Whether :func:`argument_problems` finds nothing for a step calling a tool (most steps), asked
        as it asks, without building its generator; ``False`` says nothing (ask it)."""
        tool: Tool | None = scan.fields["tool"]
        if tool is None:
            return False
        arguments = scan.fields["arguments"]
        model = tool.__dict__["input_model"]
        if model is None or issubclass(model, SignatureArguments):
            signature = self.signature(tool)
            if signature is not None and not signature.accepts(arguments):
                return False
            if model is None:
                return True
        elif not self.names(model).accepts(arguments):
            return False
        return 0 not in scan.kinds and self.unusable(model) is None  # no literal to validate

    def names(self, model: type[BaseModel]) -> _ModelNames:
        if model not in self._names:
            self._names[model] = _ModelNames.of(model)
        return self._names[model]

    def unusable(self, model: type[BaseModel]) -> str | None:
        """Why pydantic cannot use ``model`` at all (annotations it cannot resolve), if so."""
        if model not in self._unusable:
            self._unusable[model] = _unusable(model)
        return self._unusable[model]


def _unusable(model: type[BaseModel]) -> str | None:
    try:
        model.model_validate({})
    except PydanticUserError as exc:
        return exc.message
    except ValidationError:
        pass
    return None


def argument_problems(step: Step, scan: StepScan, facts: ToolFacts) -> Iterator[Problem]:
    """Arguments that cannot fit the step's tool or sub-flow, located in the step: unknown or missing
    names, literals of the wrong type."""
    tool: Tool | None = scan.fields["tool"]
    if tool is None:
        yield from _subflow_problems(step)
        return
    arguments = scan.fields["arguments"]
    model = tool.input_model
    if model is None or issubclass(model, SignatureArguments):  # names checked against the signature
        signature = facts.signature(tool)
        if signature is not None and not signature.accepts(arguments):
            yield from signature.problems(arguments)
        if model is None:
            return
    else:
        names = facts.names(model)
        if not names.accepts(arguments):
            yield from names.problems(tool.name, arguments)
    literals = {name: value for name, value, kind in scan.argument_kinds() if not kind}
    yield from _literal_problems(tool.name, model, literals, facts)


def model_argument_problems(
    where: str, tool: str, model: type[BaseModel], arguments: Mapping[str, Any], names: bool = False
) -> Iterable[Problem]:
    """Problems of a step's literal arguments against a tool's input model (with ``names``, also
    unknown and missing names), located under ``where``: what a flow's build checks, and what an MCP
    session checks on opening."""
    facts = ToolFacts()
    found = list(facts.names(model).problems(tool, arguments)) if names else []
    literals = {name: value for name, value in arguments.items() if walk(value, []) == 0}
    found.extend(_literal_problems(tool, model, literals, facts))
    return [Problem(f"{where}.{problem.location}", problem.message) for problem in found]


def _literal_problems(
    tool: str, model: type[BaseModel], literals: Mapping[str, Any], facts: ToolFacts
) -> Iterator[Problem]:
    """The literals checked against the model. Most steps of a flow have none (every argument a
    reference), and validating nothing can only find the model unusable, every other error being about
    a field not given: that answer is asked once per model. :func:`validated_literal_problems` gives the
    same problems (``tests/model/test_arguments.py`` checks)."""
    if not literals:
        message = facts.unusable(model)
        if message is not None:
            yield _unusable_problem(tool, message)
        return
    yield from validated_literal_problems(tool, model, literals)


def validated_literal_problems(tool: str, model: type[BaseModel], literals: Mapping[str, Any]) -> Iterator[Problem]:
    """The literals validated by the model, located in the step; errors about fields not given are not
    problems (references and the element fill them at run time)."""
    try:
        model.model_validate(literals)
    except PydanticUserError as exc:  # e.g. a model whose annotations cannot be resolved
        yield _unusable_problem(tool, exc.message)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            if error["type"] in ("missing", "extra_forbidden") or not error["loc"] or error["loc"][0] not in literals:
                continue
            path = ".".join(str(part) for part in error["loc"])
            yield Problem(f"arguments.{path}", f"{error['msg']} (tool {tool!r})")


def _unusable_problem(tool: str, message: str) -> Problem:
    return Problem("tool", f"the input model of tool {tool!r} is unusable: {message}")


def _subflow_problems(step: Step) -> Iterator[Problem]:
    """A sub-flow step's arguments are the sub-flow's inputs; retries and timeouts belong to its steps."""
    child = step.flow
    assert child is not None
    if child.depth >= MAX_FLOW_DEPTH:
        yield Problem("flow", f"sub-flows nest {child.depth + 1} deep; at most {MAX_FLOW_DEPTH} are allowed")
    if child.input_model is not None:
        known = list(child.input_model.model_fields)
        required = [name for name, field in child.input_model.model_fields.items() if field.is_required()]
    else:
        known = required = list(child.plan.input_names)
    for name in step.arguments:
        if name not in known:
            yield Problem(f"arguments.{name}", unknown("input", name, known, f" of sub-flow {child.name!r}"))
    for name in required:
        if name not in step.arguments:
            yield Problem("arguments", f"missing input {name!r} of sub-flow {child.name!r}")
    for field in ("retry", "timeout"):
        if getattr(step, field) is not None:
            yield Problem(field, f"a sub-flow step has no {field} of its own; give its steps one")
