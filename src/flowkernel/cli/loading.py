"""Finding the flow a ``MODULE:FLOW`` reference names, and reading inputs given on the command line.

Nothing here depends on click, so embedders can resolve references the way the CLI does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from ..errors import DefinitionError, FlowValidationError
from ..model.flow import Flow

__all__ = (
    "DEFAULT_FLOW_ATTRIBUTE",
    "FlowLoadError",
    "FlowReferenceError",
    "InputSyntaxError",
    "flow_source",
    "is_flow_file",
    "load_flow",
    "parse_input_pairs",
    "parse_inputs_json",
    "parse_value",
)

DEFAULT_FLOW_ATTRIBUTE = "flow"
"""The attribute used when a reference names only a module (``examples/corpus_report.py``)."""


class FlowReferenceError(LookupError):
    """A ``MODULE:FLOW`` reference that names no flow: no such module or file, attribute, or not a Flow."""


class FlowLoadError(Exception):
    """Importing the module, or calling the flow factory, raised; the original is ``__cause__``."""


class InputSyntaxError(ValueError):
    """A ``--input``/``--inputs-json`` value that cannot be read."""


# ---- flows -------------------------------------------------------------------------------------


def is_flow_file(reference: str) -> bool:
    """Whether ``reference`` is a flow file (``.yaml``, ``.yml``, ``.json``), not ``MODULE:FLOW``."""
    return reference.lower().endswith((".yaml", ".yml", ".json"))


def load_flow(reference: str, *, allow_modules: Iterable[str] = ()) -> Flow:
    """The flow ``MODULE:FLOW`` names; MODULE is a dotted module name or a path to a ``.py`` file.

    A reference ending in ``.yaml``, ``.yml`` or ``.json`` is a flow file, read as data
    (:func:`flowkernel.files.load_flow_file`; its problems raise :class:`~flowkernel.errors.FlowFileError`):
    it may name tools in the modules ``allow_modules`` lists and in those the project's configuration
    allows (:func:`flowkernel.files.configured_allow_modules`), and imports nothing else.

    FLOW is a (dotted) attribute holding a :class:`Flow` or a function of no arguments returning one;
    it defaults to ``flow``. Errors raised while building the flow (``FlowValidationError``, pydantic's
    ``ValidationError``) propagate as they are; anything else the user's code raises is wrapped in
    :class:`FlowLoadError`.
    """
    if is_flow_file(reference):
        return _load_file(reference, allow_modules)
    module_ref, attribute = _split(reference)
    module = _import(module_ref)
    target: Any = module
    for depth, part in enumerate(attribute.split(".")):
        try:
            target = getattr(target, part)
        except AttributeError:
            hint = _flow_hint(module) if depth == 0 else ""
            raise FlowReferenceError(f"{module_ref!r} has no attribute {attribute!r}{hint}") from None
    if isinstance(target, Flow):
        return target
    if callable(target) and not isinstance(target, type):
        return _call_factory(target, reference)
    kind = type(target).__name__
    raise FlowReferenceError(f"{reference!r} is of type {kind!r}, not a Flow or a function returning one")


def _load_file(reference: str, allow_modules: Iterable[str]) -> Flow:
    from ..files import configured_allow_modules, load_flow_file

    if not Path(reference).is_file():
        raise FlowReferenceError(f"no such file: {reference!r}")
    return load_flow_file(reference, allow_modules=(*allow_modules, *configured_allow_modules()))


def flow_source(reference: str) -> str:
    """``reference`` in a form that loads the same flow from any working directory, for the journal.

    A file path becomes absolute, and so does a module found only because it sits in the working
    directory (``flowkernel run mymodule:flow``); other module names (installed, on ``PYTHONPATH``) are
    kept. The attribute is always written out. Call it after :func:`load_flow` succeeded.
    """
    if is_flow_file(reference):
        return str(Path(reference).resolve())
    module_ref, attribute = _split(reference)
    if _is_path(module_ref):
        return f"{Path(module_ref).resolve()}:{attribute}"
    module = sys.modules.get(module_ref)
    origin = getattr(module, "__file__", None)
    if "." not in module_ref and origin is not None:
        file = Path(origin).resolve()
        if file.name == f"{module_ref}.py" and file.parent == Path.cwd().resolve():
            return f"{file}:{attribute}"  # loaded from a path, a top-level module gets the same name
    return f"{module_ref}:{attribute}"


def _is_path(module_ref: str) -> bool:
    return module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref


def _split(reference: str) -> tuple[str, str]:
    module_ref, sep, attribute = reference.rpartition(":")
    if not sep or "/" in attribute or "\\" in attribute or attribute.endswith(".py"):  # no :FLOW (or C:\...)
        module_ref, attribute = reference, DEFAULT_FLOW_ATTRIBUTE
    if not module_ref:
        raise FlowReferenceError(f"{reference!r} names no module; expected MODULE:FLOW")
    if not all(part.isidentifier() for part in attribute.split(".")):
        raise FlowReferenceError(f"{attribute!r} in {reference!r} is not an attribute name; expected MODULE:FLOW")
    return module_ref, attribute


def _import(module_ref: str) -> ModuleType:
    if _is_path(module_ref):
        return _import_file(Path(module_ref))
    if not all(part.isidentifier() for part in module_ref.split(".")):
        raise FlowReferenceError(f"{module_ref!r} is neither a module name nor a path to a .py file")
    cwd = os.getcwd()
    if cwd not in sys.path:  # as `python -m` does, so `flowkernel run mymodule:flow` finds ./mymodule.py
        sys.path.insert(0, cwd)
    try:
        module: ModuleType = _run_user_code(f"importing {module_ref!r}", importlib.import_module, module_ref)
    except FlowLoadError as exc:
        missing = getattr(exc.__cause__, "name", None) if isinstance(exc.__cause__, ModuleNotFoundError) else None
        if missing and (module_ref == missing or module_ref.startswith(missing + ".")):
            raise FlowReferenceError(f"no module named {module_ref!r}") from None
        raise  # the module exists but failed, for instance on a missing dependency of its own
    return module


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise FlowReferenceError(f"no such file: {str(path)!r}")
    path = path.resolve()
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        name = f"flowkernel_cli_{abs(hash(str(path))):x}_{name}"  # do not shadow an unrelated module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FlowReferenceError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and pickling resolve classes through sys.modules
    if str(path.parent) not in sys.path:  # as `python file.py` does, so the file can import its neighbours
        sys.path.insert(0, str(path.parent))
    try:
        _run_user_code(f"importing {path.name!r}", spec.loader.exec_module, module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _run_user_code(what: str, fn: Any, *args: Any) -> Any:
    """Call into user code; errors building a flow pass as they are, any other error is wrapped."""
    try:
        return fn(*args)
    except (FlowValidationError, DefinitionError, ValidationError):
        raise
    except Exception as exc:
        raise FlowLoadError(f"{what} raised {type(exc).__name__}: {exc}") from exc


def _call_factory(factory: Any, reference: str) -> Flow:
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise FlowReferenceError(
            f"{reference!r} is a function that needs arguments; FLOW must name a Flow or a function taking none"
        ) from None
    except ValueError:  # no introspectable signature: just try the call
        pass
    built = _run_user_code(f"calling {reference}()", factory)
    if not isinstance(built, Flow):
        raise FlowReferenceError(f"{reference}() returned an object of type {type(built).__name__!r}, not a Flow")
    return built


def _flow_hint(module: ModuleType) -> str:
    flows = sorted(name for name, value in vars(module).items() if isinstance(value, Flow))
    return f" (flows in it: {', '.join(flows)})" if flows else ""


# ---- inputs ------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value here")


def parse_value(text: str) -> Any:
    """``text`` read as JSON if it is JSON (``3`` is 3, ``["a"]`` a list), else the string itself."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def parse_input_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["n=3", "name=ada"]`` as ``{"n": 3, "name": "ada"}``; a later pair wins over an earlier one."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputSyntaxError(f"{pair!r} is not NAME=VALUE")
        inputs[name] = parse_value(value)
    return inputs


def parse_inputs_json(source: str) -> dict[str, Any]:
    """A JSON object given inline, in a file, or on standard input (``-``)."""
    if source == "-":
        text, where = sys.stdin.read(), "standard input"
    elif Path(source).is_file():
        text, where = Path(source).read_text(encoding="utf-8"), f"file {source!r}"
    else:
        text, where = source, repr(source)
    try:
        data = json.loads(text)
    except ValueError as exc:
        if where == repr(source) and not source.lstrip().startswith(("{", "[")):
            raise InputSyntaxError(f"{where} is neither a file nor a JSON object") from None
        raise InputSyntaxError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputSyntaxError(f"{where} must hold a JSON object of inputs, not a {type(data).__name__}")
    return data
