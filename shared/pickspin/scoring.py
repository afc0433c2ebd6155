"""Paper Eq. 2: f = wR·R̂(p, L) + wT·T̂(S) + wC·Ĉ(S), pure functions over a snapshot.

R̂ is the expected quality of a model given the prompt's class probabilities; T̂ and Ĉ are
latency and cost per query, min-max normalised over the candidates so that 1 is the
fastest / cheapest and 0 the slowest / dearest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pickspin.events import ScoreBreakdown, ServiceStats
from pickspin.settings import Model, Service, Weights

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
        replicas = self.stats.replicas or 1
        busy = (self.stats.running or 0) + (self.stats.waiting or 0)
        return busy < replicas * self.service.concurrency

    @property
    def eligible(self) -> bool:
        """Algorithm 2: only healthy services with free capacity are candidates."""
        return self.stats.healthy and self.has_capacity


def relevance(probabilities: Mapping[str, float], model: Model) -> float:
    """R̂(p, L) = Σ_k p_k · quality(L, k)."""
    return sum(p * model.quality.get(k, 0.0) for k, p in probabilities.items())  # type: ignore[call-overload]


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


def normalise_lower_is_better(values: Sequence[float]) -> list[float]:
    """Min-max to [0, 1] with the smallest value at 1; all equal → all 1."""
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [1.0 for _ in values]
    return [(hi - v) / (hi - lo) for v in values]


def score(
    views: Sequence[ServiceView], probabilities: Mapping[str, float], weights: Weights
) -> list[ScoreBreakdown]:
    """Eq. 2 for every view, normalising T and C over exactly these views."""
    if not views:
        return []
    latencies = [expected_latency(v) for v in views]
    costs = [cost_per_query(v.service, lat) for v, lat in zip(views, latencies, strict=True)]
    t_hat = normalise_lower_is_better(latencies)
    c_hat = normalise_lower_is_better(costs)
    out = []
    for view, lat, cost, t, c in zip(views, latencies, costs, t_hat, c_hat, strict=True):
        r = relevance(probabilities, view.model)
        f = weights.relevance * r + weights.latency * t + weights.cost * c
        out.append(
            ScoreBreakdown(
                relevance=round(r, 6), latency=round(t, 6), cost=round(c, 6),
                latency_seconds=round(lat, 6), cost_per_query=cost, score=round(f, 6),
            )
        )
    return out
