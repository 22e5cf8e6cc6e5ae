"""Hypothesis profiles for the property tests (tests/unit/test_properties.py).

``ci`` (chosen when ``CI`` is set, as .ci/run does) is derandomized: the same inputs on every
run, so a failure in CI reproduces locally with ``HYPOTHESIS_PROFILE=ci``, and nothing is
written to ``.hypothesis/``. ``dev`` draws fresh inputs each run and remembers failures.
Neither has a per-example deadline: the machine is shared, and timing is not what these test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# too_slow: an example that writes a config file and walks its parents is slow by
# hypothesis' standards on a shared two-core machine, not a sign of a bad strategy.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
