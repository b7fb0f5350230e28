"""The pure model: tools, steps, flows, references."""

from .flow import Flow
from .policies import ErrorPolicy, Fallback
from .refs import Input, Item, Ref
from .retry import RetryPolicy
from .step import Step
from .tool import Tool, tool

__all__ = ("ErrorPolicy", "Fallback", "Flow", "Input", "Item", "Ref", "RetryPolicy", "Step", "Tool", "tool")
