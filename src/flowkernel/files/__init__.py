"""Flows as files: YAML or JSON flow definitions, read safely, checked with positions, and written back.

::

    from flowkernel.files import dump_flow, load_flow_file

    flow = load_flow_file("flow.yaml", allow_modules=["mytools"])
    text = dump_flow(flow)  # loads back to an equal flow

A file names its tools (``SERVER.TOOL``, a registered name, or ``MODULE:ATTR`` of an allowed module) and
never holds code. The format's JSON Schema is :func:`flow_file_schema` (``flowkernel schema``).
"""

from __future__ import annotations

from .build import check_flow_file, load_flow_file
from .config import ConfigError, configured_allow_modules
from .dump import FlowDumpError, dump_flow, flow_data
from .names import FLOW_GROUP, TOOL_GROUP
from .schema import FORMAT_VERSION, flow_file_schema
from .source import FILE_SUFFIXES, Limits

__all__ = (
    "FILE_SUFFIXES",
    "FLOW_GROUP",
    "FORMAT_VERSION",
    "TOOL_GROUP",
    "ConfigError",
    "FlowDumpError",
    "Limits",
    "check_flow_file",
    "configured_allow_modules",
    "dump_flow",
    "flow_data",
    "flow_file_schema",
    "load_flow_file",
)
