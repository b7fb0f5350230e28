"""Hypothesis profiles: ``ci`` (the default, sized to fit CI) and a long run via the environment.

``FLOWKERNEL_PROPERTY_EXAMPLES=N`` sets the examples per property (default 60).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FLOWKERNEL_PROPERTY_EXAMPLES", "60"))

settings.register_profile(
    "flowkernel",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("flowkernel")
