"""The pure model: tools, steps, flows, references."""

from .flow import Flow
from .refs import Input, Ref
from .step import Step
from .tool import Tool, tool

__all__ = ("Flow", "Input", "Ref", "Step", "Tool", "tool")
