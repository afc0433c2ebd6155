"""Paper Eq. 2: f = wR·R̂(p, L) + wT·T̂(S) + wC·Ĉ(S), pure functions over a snapshot.

R̂ is the chance that the model answers the prompt well: from a router's calibrated per-tier
success probabilities when it has them (shifted by the model's `abilityOffset`), else the
expected quality Σ_k p_k·quality(L, k) over the class probabilities. T̂ and Ĉ are latency
and cost per query normalised against fixed ranges — the configured matrix's warm priors
(`Ranges.of`) — so that 1 is the fastest / cheapest configured service and 0 the slowest /
dearest, clipped to [0, 1] (a cold start or a measured latency beyond the range scores 0).
Cost is compared on a log scale: prices across a matrix span orders of magnitude, and on a
linear scale the dearest service would squash every other difference to nothing.
Fixed ranges keep a small latency gap between today's candidates from outweighing R̂.

Ĉ prices one of two things (the profile's `costBasis`): `allocated`, the GPU time the
request occupies (a slot's share of its replica, whether or not the replica would run
anyway), or `billed`, what the choice adds to the GPU bill: a ready replica with a free slot
is already paid for (nearly free: Ĉ = 1), a service at zero bills a whole replica for its
cold start before it serves anything (the range then reaches the dearest wake of the matrix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pickspin.core.events import ScoreBreakdown, ServiceStats
from pickspin.core.profiles import Weights
from pickspin.core.settings import Model, Service

# Output length that latency is compared at (the priors in values.yaml assume it).
REFERENCE_TOKENS = 128


@dataclass(frozen=True)
class ServiceView:
    """A service as the selector sees it at one moment: config plus its latest statistics."""

    service: Service
    model: Model
    stats: ServiceStats

    @property
    def warm(self) -> bool:
        """Cold: known to have no replica, or none ready yet (starting); unknown is warm."""
        return self.stats.replicas != 0 and self.stats.ready_replicas != 0

    @property
    def has_capacity(self) -> bool:
        """A free slot on a replica of a warm service (one still starting counts: a request
        queues for the scale-up under way). A cold service has none: it serves nothing
        until its cold start is over (unknown replicas count as one ready)."""
        if not self.warm:
            return False
        ready = self.stats.replicas or 1
        busy = (self.stats.running or 0) + (self.stats.waiting or 0)
        return busy < ready * self.service.concurrency

    @property
    def eligible(self) -> bool:
        """Algorithm 2: healthy, with free capacity now."""
        return self.stats.healthy and self.has_capacity

    @property
    def wakeable(self) -> bool:
        """Healthy but cold: a candidate to wake (T̂ pays its cold start), not capacity."""
        return self.stats.healthy and not self.warm


def relevance(probabilities: Mapping[str, float], model: Model,
              success: Mapping[str, float] | None = None) -> float:
    """R̂(p, L): σ(logit P(tier(L) succeeds) + abilityOffset(L)) when `success` has the
    model's tier, else Σ_k p_k · quality(L, k)."""
    if success and model.name in success:
        return min(max(float(success[model.name]), 0.0), 1.0)
    if success and model.tier in success:
        p = min(max(float(success[model.tier]), 1e-6), 1 - 1e-6)
        z = math.log(p / (1 - p)) + model.ability_offset
        return 1 / (1 + math.exp(-z))
    return sum(p * model.quality.get(k, 0.0) for k, p in probabilities.items())  # type: ignore[call-overload]


def _logs(*values: float) -> tuple[float, ...]:
    return tuple(math.log(max(v, 1e-12)) for v in values)


@dataclass(frozen=True)
class Ranges:
    """Fixed normalisation ranges for T̂ and Ĉ (seconds, dollars per query)."""

    latency: tuple[float, float]
    cost: tuple[float, float]

    @classmethod
    def of(cls, services: Sequence[Service], billing: Billing | None = None) -> Ranges:
        """From the configured matrix: every service's warm prior latency and its cost
        (with `billing`: up to the dearest wake plus the request)."""
        lats = [s.priors.latency_seconds for s in services]
        costs = [cost_per_query(s, s.priors.latency_seconds) for s in services]
        high = max(costs) if billing is None else max(
            wake_cost(s, billing.cooldown_seconds) + c
            for s, c in zip(services, costs, strict=True))
        return cls((min(lats), max(lats)), (min(costs), high))


def normalise_fixed(value: float, lo: float, hi: float) -> float:
    """1 at `lo` (best), 0 at `hi` and beyond; a degenerate range scores 1 up to `lo`."""
    if hi - lo <= 1e-12:
        return 1.0 if value <= lo + 1e-12 else 0.0
    return min(1.0, max(0.0, (hi - value) / (hi - lo)))


def expected_latency(view: ServiceView) -> float:
    """Latency of a reference answer, plus the cold start when the service is at zero.

    Measured requests vary in length, so a measured service is judged by its TTFT and
    decode time per token for `REFERENCE_TOKENS` output tokens (the length the priors in
    the values file assume); a service with only a mean latency measured uses that, and
    one never measured uses its prior.
    """
    stats = view.stats
    if stats.ttft_p50_seconds is not None and stats.time_per_token_seconds is not None:
        latency = stats.ttft_p50_seconds + REFERENCE_TOKENS * stats.time_per_token_seconds
    elif stats.latency_seconds is not None:
        latency = stats.latency_seconds
    else:
        latency = view.service.priors.latency_seconds
    return latency if view.warm else latency + view.service.cold_start_seconds


def cost_per_query(service: Service, latency_seconds: float) -> float:
    """GPU dollars one request occupies: $/GPU-h × GPUs × seconds, shared by concurrency."""
    gpu_dollars_per_second = service.cost_per_gpu_hour * service.gpus / 3600
    return gpu_dollars_per_second * latency_seconds / service.concurrency


def wake_cost(service: Service, cooldown_seconds: float) -> float:
    """GPU dollars one woken replica bills at least: its start (`coldStartSeconds`) and the
    cooldown before it may scale to zero again."""
    return (service.cost_per_gpu_hour * service.gpus / 3600
            * (service.cold_start_seconds + cooldown_seconds))


@dataclass(frozen=True)
class Billing:
    """What the `billed` cost basis needs of the profile: replicas its warm pools keep
    per service (`warmpool.warm_pools`) and its cooldown."""

    pools: Mapping[str, int]
    cooldown_seconds: float


def billed_cost(view: ServiceView, latency_seconds: float, billing: Billing) -> float:
    """What choosing `view` adds to the GPU bill.

    - a ready replica with a free slot that the warm pool keeps anyway: nothing;
    - one above the pool, kept up by traffic: its replicas' dollars until the next request
      would have come anyway, min(1 / rate, cooldown) seconds (nearly nothing at a busy
      service; a whole cooldown at an idle one);
    - a service at zero: a whole replica's start and cooldown (`wake_cost`) plus the slot
      share of the request; starting or full: the slot share (`cost_per_query`);
    - replicas unknown (no scaler reports them: `pickspin up --always-on`, `pickspin
      replay`): what the choice adds to the bill is unknown too, so the slot share."""
    stats, svc = view.stats, view.service
    if stats.ready_replicas is None and stats.replicas is None:
        return cost_per_query(svc, latency_seconds)
    if view.warm and view.has_capacity:
        ready = stats.ready_replicas if stats.ready_replicas is not None else 0
        above = ready - billing.pools.get(svc.name, 0)
        if above <= 0:
            return 0.0
        rate = stats.rate_per_second
        gap = min(1 / rate, billing.cooldown_seconds) if rate > 0 else billing.cooldown_seconds
        return above * svc.cost_per_gpu_hour * svc.gpus / 3600 * gap
    share = cost_per_query(svc, latency_seconds)
    return share + wake_cost(svc, billing.cooldown_seconds) if stats.replicas == 0 \
        else share


def score(
    views: Sequence[ServiceView], probabilities: Mapping[str, float], weights: Weights,
    ranges: Ranges | None = None, success: Mapping[str, float] | None = None,
    billing: Billing | None = None,
) -> list[ScoreBreakdown]:
    """Eq. 2 for every view; T̂ and Ĉ against `ranges` (default: these views' own priors,
    which is fixed for a fixed matrix — pass `Ranges.of(settings.services, billing)`); Ĉ
    prices `billed_cost` when `billing` is given, else `cost_per_query`."""
    if not views:
        return []
    fixed = ranges or Ranges.of([v.service for v in views], billing)
    latencies = [expected_latency(v) for v in views]
    costs = [billed_cost(v, lat, billing) if billing else cost_per_query(v.service, lat)
             for v, lat in zip(views, latencies, strict=True)]
    t_hat = [normalise_fixed(v, *fixed.latency) for v in latencies]
    c_hat = [normalise_fixed(*_logs(v, *fixed.cost)) for v in costs]
    out = []
    for view, lat, cost, t, c in zip(views, latencies, costs, t_hat, c_hat, strict=True):
        r = relevance(probabilities, view.model, success)
        f = weights.relevance * r + weights.latency * t + weights.cost * c
        out.append(
            ScoreBreakdown(
                relevance=round(r, 6), latency=round(t, 6), cost=round(c, 6),
                latency_seconds=round(lat, 6), cost_per_query=cost, score=round(f, 6),
            )
        )
    return out
