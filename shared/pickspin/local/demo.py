"""Values for watching Spin quickly: a few services of the matrix with short cooldowns.

Used by the Spin integration tests and the cold-start benchmark; the numbers of the
services themselves stay those of the values file unless a caller overrides them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


def quick_spin_values(values: Mapping[str, Any], services: Sequence[str], *,
                      cooldown_seconds: int = 4, stabilization_seconds: int = 2,
                      warm_pool: Mapping[str, int] | None = None,
                      target_utilization: float = 0.5,
                      max_cold_wait_seconds: float = 60,
                      warm_pool_scope: str = "service") -> dict[str, Any]:
    """A copy of a values file (the chart's layout) cut down to `services`, with every
    profile's scaling shortened so that scale-to-zero happens within seconds. The warm pool
    sits on every service of its tier unless `warm_pool_scope` is "tier" (the tests and
    benchmarks that use these values watch two warm services of a tier)."""
    data = copy.deepcopy(dict(values))
    ps = data["global"]["pickspin"]
    ps["services"] = [s for s in ps["services"] if f"{s['model']}-{s['backend']}" in services]
    kept = {s["model"] for s in ps["services"]}
    ps["models"] = [m for m in ps["models"] if m["name"] in kept]
    pool = dict(warm_pool or {"small": 0, "medium": 0, "large": 0})
    for profile in ps["profiles"].values():
        profile["scaling"].update(cooldownSeconds=cooldown_seconds,
                                  scaleDownStabilizationSeconds=stabilization_seconds,
                                  warmPool=pool, warmPoolScope=warm_pool_scope,
                                  targetUtilization=target_utilization,
                                  maxColdWaitSeconds=max_cold_wait_seconds)
    return data
