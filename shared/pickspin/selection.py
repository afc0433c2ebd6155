"""Paper Algorithm 2: choose the service S(x, y) for a classified prompt.

`select` is pure: settings, a telemetry snapshot and the classification in, a decision
with its score breakdown and the runners-up out. Strategies are named (`StrategyName`)
and looked up in `STRATEGIES`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pickspin.errors import InvalidRequest, ModelNotFound, NoCandidate
from pickspin.events import Candidate, ScoreBreakdown, ServiceStats
from pickspin.scoring import ServiceView, score
from pickspin.settings import Settings, StrategyName

Ranked = list[tuple[ServiceView, ScoreBreakdown]]
Strategy = Callable[[Ranked, random.Random], Ranked]

# How many candidates after the chosen one a decision carries (the gateway's fallbacks).
RUNNERS_UP = 4


def _by_score(ranked: Ranked, rng: random.Random) -> Ranked:
    return sorted(ranked, key=lambda vb: (-vb[1].score, vb[1].latency_seconds))


def _by_latency(ranked: Ranked, rng: random.Random) -> Ranked:
    return sorted(ranked, key=lambda vb: (vb[1].latency_seconds, -vb[1].score))


def _random(ranked: Ranked, rng: random.Random) -> Ranked:
    shuffled = list(ranked)
    rng.shuffle(shuffled)
    return shuffled


STRATEGIES: dict[StrategyName, Strategy] = {
    StrategyName.MULTI_OBJECTIVE: _by_score,
    StrategyName.LATENCY: _by_latency,
    StrategyName.RANDOM: _random,
}


@dataclass(frozen=True)
class Decision:
    profile: str
    strategy: StrategyName
    chosen: Candidate
    runners_up: tuple[Candidate, ...]


def views_of(settings: Settings, stats: Mapping[str, ServiceStats]) -> list[ServiceView]:
    """Every configured service with its statistics (empty stats when none were seen)."""
    return [
        ServiceView(svc, settings.model(svc.model), stats.get(svc.name, ServiceStats()))
        for svc in settings.services
    ]


def select(
    settings: Settings,
    stats: Mapping[str, ServiceStats],
    probabilities: Mapping[str, float],
    *,
    profile: str | None = None,
    model: str | None = None,
    strategy: str | None = None,
    exclude: Sequence[str] = (),
    rng: random.Random | None = None,
) -> Decision:
    """Algorithm 2 over healthy services with free capacity, optionally one model only."""
    profile_name = profile or settings.default_profile
    if profile_name not in settings.profiles:
        raise InvalidRequest(
            f"unknown profile {profile_name!r}; choose one of {sorted(settings.profiles)}",
            param="profile",
        )
    try:
        strategy_name = StrategyName(strategy or settings.routing.strategy)
    except ValueError:
        raise InvalidRequest(
            f"unknown strategy {strategy!r}; choose one of {[s.value for s in StrategyName]}",
            param="strategy",
        ) from None
    views = views_of(settings, stats)
    if model is not None:
        views = [v for v in views if v.model.name == model]
        if not views:
            raise ModelNotFound(f"the model {model!r} does not exist", param="model")
    allowed = [v for v in views if v.service.name not in exclude]
    # Algorithm 2 takes healthy services with free capacity; when every healthy one is
    # full, the request queues at one of them rather than failing (the demand it adds is
    # what scales the service out).
    candidates = ([v for v in allowed if v.eligible]
                  or [v for v in allowed if v.stats.healthy])
    if not candidates:
        raise NoCandidate(
            "no healthy service can take this request"
            + (f" for model {model!r}" if model else "")
        )
    weights = settings.profile(profile_name).weights
    ranked = list(zip(candidates, score(candidates, probabilities, weights), strict=True))
    ordered = STRATEGIES[strategy_name](ranked, rng or random.Random())
    picked = [_candidate(view, breakdown) for view, breakdown in ordered]
    return Decision(profile_name, strategy_name, picked[0], tuple(picked[1 : 1 + RUNNERS_UP]))


def _candidate(view: ServiceView, breakdown: ScoreBreakdown) -> Candidate:
    return Candidate(
        service=view.service.name,
        model=view.model.name,
        backend=view.service.backend,
        endpoint=view.service.endpoint,
        breakdown=breakdown,
        warm=view.warm,
    )
