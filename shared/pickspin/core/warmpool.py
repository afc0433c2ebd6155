"""Where a profile's warm pools sit: `minReplicaCount` per service.

A profile's `warmPool[tier]` is N replicas kept ready for the tier. With `warmPoolScope:
tier` (the default) they sit on the tier's *designated* services: the tier's services in
`warm_order`, each filled up to its `maxReplicas` before the next, every other service of
the tier scaling to zero. With `warmPoolScope: service` every service of the tier keeps N
(redundancy across backends, at N times the idle GPUs).

The order is a fixed function of the matrix, so the keda chart renders the same numbers
(`pickspin-keda.warmPools` builds the same sort key) and the local scaler, which applies the
chart's ScaledObjects, and the trace simulator, which calls `scaling_for`, keep the same
services warm. It puts first what Eq. 2 prefers among a tier's warm services: the tier's
strongest model (largest `abilityOffset`, the shift of R̂ against the tier's stand-in; then
the largest mean `quality`), and of that model the backend with the fastest warm prior, which
has the best T̂ and, at equal GPUs, price and concurrency, the best Ĉ.

>>> warm_pools(Settings.load(), "balanced")["gemma-3-27b-trtllm"]   # doctest: +SKIP
1
"""

from __future__ import annotations

from pickspin.core.settings import TIERS, Service, Settings


def warm_key(settings: Settings, service: Service) -> str:
    """The sort key of `warm_order`; the chart formats the same string (Go's and Python's
    `%08.4f` agree), so both sort alike."""
    model = settings.model(service.model)
    q = model.quality
    mean = (q["low"] + q["medium"] + q["high"]) / 3
    return (f"{10 - model.ability_offset:08.4f}/{1 - mean:.6f}/"
            f"{service.priors.latency_seconds:011.4f}/{service.name}")


def warm_order(settings: Settings, tier: str) -> list[Service]:
    """The services of `tier`, in the order its warm pool fills them."""
    members = [s for s in settings.services if settings.model(s.model).tier == tier]
    return sorted(members, key=lambda s: warm_key(settings, s))


def warm_pools(settings: Settings, profile: str | None = None) -> dict[str, int]:
    """Service name → replicas kept warm (minReplicaCount) under `profile` (default: the
    settings' defaultProfile); every service is present, most at 0."""
    scaling = settings.profile(profile).scaling
    out = {s.name: 0 for s in settings.services}
    for tier in TIERS:
        wanted = scaling.warm_pool.get(tier, 0)  # type: ignore[call-overload]
        for svc in warm_order(settings, tier):
            take = min(wanted, svc.max_replicas)
            out[svc.name] = take
            if scaling.warm_pool_scope == "tier":
                wanted -= take
    return out
