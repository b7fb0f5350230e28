"""The pure model: tools, steps, flows, references."""

from .cache import CachePolicy
from .flow import Flow
from .policies import ContextPolicy, ErrorPolicy, Fallback
from .refs import Context, Input, Item, Ref
from .resource import Resource
from .retry import RetryPolicy
from .step import Step
from .tool import Tool, tool

__all__ = (
    "CachePolicy",
    "Context",
    "ContextPolicy",
    "ErrorPolicy",
    "Fallback",
    "Flow",
    "Input",
    "Item",
    "Ref",
    "Resource",
    "RetryPolicy",
    "Step",
    "Tool",
    "tool",
)
