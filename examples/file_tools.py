"""Python tools for the flow file ``clock_report.yaml``, which names them as ``file_tools:NAME``.

A flow file imports a module only when you allow it::

    flowkernel run examples/clock_report.yaml --allow-module file_tools --input zones='["UTC", "Asia/Tokyo"]'
"""

from __future__ import annotations

from typing import Any

from flowkernel import tool


@tool
def clock_lines(times: list[dict[str, Any]]) -> list[str]:
    """One line per zone: its name, the time there and the day of the week."""
    return [f"{t['timezone']}: {t['datetime'][11:16]} ({t['day_of_week']})" for t in times]
