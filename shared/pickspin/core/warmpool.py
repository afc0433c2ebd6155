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

A profile's `schedule` adds warm replicas at set times of the day (KEDA `cron` triggers
on the same designated services): `warm_pools(..., time_of_day=…)` is the pool at that time.

>>> warm_pools(Settings.load(), "balanced")["gemma-3-27b-trtllm"]   # doctest: +SKIP
1
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from pickspin.core.profiles import ScheduledPool, local_time_of_day
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
    return list(_orders(settings)[tier])


# what each settings object's pools derive from, computed once (selection asks for the
# pools on every request): keyed by identity (settings are frozen but not hashable), gone
# with their settings
_CACHES: dict[int, tuple[weakref.ref[Settings], dict[Any, Any]]] = {}


def _cache(settings: Settings) -> dict[Any, Any]:
    held = _CACHES.get(id(settings))
    if held is not None and held[0]() is settings:
        return held[1]
    key = id(settings)

    def forget(_: weakref.ref[Settings]) -> None:
        _CACHES.pop(key, None)

    cache: dict[Any, Any] = {}
    _CACHES[key] = (weakref.ref(settings, forget), cache)
    return cache


def _orders(settings: Settings) -> dict[str, tuple[Service, ...]]:
    cache = _cache(settings)
    if "orders" not in cache:
        cache["orders"] = {tier: tuple(sorted(
            (s for s in settings.services if settings.model(s.model).tier == tier),
            key=lambda s: warm_key(settings, s))) for tier in TIERS}
    orders: dict[str, tuple[Service, ...]] = cache["orders"]
    return orders


def _fill(settings: Settings, wanted: Mapping[Any, int], scope: str) -> dict[str, int]:
    out = {s.name: 0 for s in settings.services}
    for tier in TIERS:
        left = wanted.get(tier, 0)
        for svc in warm_order(settings, tier):
            take = min(left, svc.max_replicas)
            out[svc.name] = take
            if scope == "tier":
                left -= take
    return out


def warm_pools(settings: Settings, profile: str | None = None,
               time_of_day: float | None = None) -> dict[str, int]:
    """Service name → replicas kept warm under `profile` (default: the settings'
    defaultProfile); every service is present, most at 0. Without `time_of_day` the
    `warmPool` all day long (minReplicaCount); with it (seconds after midnight in the
    profile's timezone, `time_of_day`) also every scheduled pool whose window holds it: per
    service the largest, as the HPA takes the largest of minReplicaCount and the cron
    triggers."""
    scaling = settings.profile(profile).scaling
    active = active_windows(settings, profile, time_of_day)
    cache = _cache(settings)
    key = ("pools", profile or settings.default_profile, active)
    if key not in cache:  # the pools change only where a scheduled window begins or ends
        out = _fill(settings, scaling.warm_pool, scaling.warm_pool_scope)
        for (_, pools), on in zip(scheduled_pools(settings, profile), active, strict=True):
            if on:
                out = {name: max(n, pools[name]) for name, n in out.items()}
        cache[key] = out
    return dict(cache[key])


def active_windows(settings: Settings, profile: str | None,
                   time_of_day: float | None) -> tuple[bool, ...]:
    """Which of the profile's scheduled pools hold at `time_of_day` (none without a time):
    all that the time of day changes in the profile's pools."""
    return tuple(time_of_day is not None and entry.covers(time_of_day)
                 for entry in settings.profile(profile).scaling.schedule)


def scheduled_pools(settings: Settings, profile: str | None = None
                    ) -> list[tuple[ScheduledPool, dict[str, int]]]:
    """Each scheduled pool of `profile` with its replicas per service (`desiredReplicas` of
    the service's cron trigger): its tiers' replicas placed on the designated services as
    `warmPool` is, its named services' on them (the largest where both name one)."""
    scaling = settings.profile(profile).scaling
    out = []
    budget = {s.name: s.max_replicas for s in settings.services}
    for entry in scaling.schedule:
        pools = _fill(settings, entry.warm_pool, scaling.warm_pool_scope)
        for name, n in entry.services.items():
            if name in budget:  # a name the matrix does not have is skipped
                pools[name] = max(pools[name], min(n, budget[name]))
        out.append((entry, pools))
    return out


def time_of_day(settings: Settings, profile: str | None, epoch_seconds: float) -> float:
    """Seconds after midnight at `epoch_seconds` in the timezone of the profile's schedule
    (what its cron triggers are evaluated in)."""
    return local_time_of_day(epoch_seconds, settings.profile(profile).scaling.timezone)
