"""Paper Algorithm 2: choose the service S(x, y) for a classified prompt.

`select` is pure: settings, a telemetry snapshot and the classification in, a decision
with its score breakdown and the runners-up out. Strategies are named (`StrategyName`)
and looked up in `STRATEGIES`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pickspin.core.errors import InvalidRequest, ModelNotFound, NoCandidate
from pickspin.core.events import Candidate, ScoreBreakdown, ServiceStats
from pickspin.core.scoring import Billing, Ranges, ServiceView, score
from pickspin.core.settings import (
    COMPLEXITY_CLASSES,
    TIERS,
    Settings,
    StrategyName,
    TradeDown,
)
from pickspin.core.warmpool import warm_pools

Ranked = list[tuple[ServiceView, ScoreBreakdown]]
Strategy = Callable[[Ranked, random.Random | None], Ranked]

# How many candidates after the chosen one a decision carries (the gateway's fallbacks).
RUNNERS_UP = 4


def _by_score(ranked: Ranked, rng: random.Random | None) -> Ranked:
    return sorted(ranked, key=lambda vb: (-vb[1].score, vb[1].latency_seconds))


def _by_latency(ranked: Ranked, rng: random.Random | None) -> Ranked:
    return sorted(ranked, key=lambda vb: (vb[1].latency_seconds, -vb[1].score))


def _random(ranked: Ranked, rng: random.Random | None) -> Ranked:
    shuffled = list(ranked)
    (rng or random.Random()).shuffle(shuffled)  # seeded from the OS only when it is used
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
    #: warm services outside the floor or full, free ones first: where the request goes
    #: rather than waiting for a cold start it cannot get in time (`coldplan.cold_plan`)
    overflow: tuple[Candidate, ...] = ()


# what a service never seen by telemetry is judged on (frozen: one value serves every call)
NO_STATS = ServiceStats()


def views_of(settings: Settings, stats: Mapping[str, ServiceStats]) -> list[ServiceView]:
    """Every configured service with its statistics (empty stats when none were seen)."""
    return [
        ServiceView(svc, settings.model(svc.model), stats.get(svc.name, NO_STATS))
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
    complexity: str | None = None,
    success: Mapping[str, float] | None = None,
    pools: Mapping[str, int] | None = None,
    settled: bool = False,
    time_of_day: float | None = None,
) -> Decision:
    """Algorithm 2 over healthy services with free capacity (and cold ones to wake),
    optionally one model only.

    The profile's trade-down floor (`Routing.trade_down`) then keeps only candidates of a
    tier ≥ class − `tiers` whose R̂ is within `relevance` of the best warm one of those tiers
    (the best of all when none is warm), while any is left;
    `complexity` defaults to the most probable class; `pools` are the profile's warm pools
    for the billed cost basis (when not given, `warmpool.warm_pools` at `time_of_day`:
    seconds after midnight in the profile's timezone, `warmpool.time_of_day`, which brings
    in the scheduled pools that hold at that time). A `settled` class (the hybrid's
    short-prompt rule) takes the profile's `settled_floor` instead, and a settled low one
    is scored on the models' quality for the low class rather than on `success`."""
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
    # Algorithm 2 takes healthy services with free capacity, and cold ones to wake (T̂ and
    # Ĉ pay their start; a cold service is not capacity: `coldplan` serves the request
    # elsewhere meanwhile). When every healthy one is full, the request queues at one of
    # them rather than failing (the demand it adds is what scales the service out).
    healthy = [v for v in allowed if v.stats.healthy]
    candidates = [v for v in healthy if v.eligible or v.wakeable] or healthy
    if not candidates:
        raise NoCandidate(
            "no healthy service can take this request"
            + (f" for model {model!r}" if model else "")
        )
    ranked_ids = {id(v) for v in candidates}
    full = [v for v in healthy if v.warm and id(v) not in ranked_ids]
    if settled and model is None and (complexity or _most_probable(probabilities)) == "low":
        # an easy request the short-prompt rule settled ("Thanks!", "Define …"): each
        # model's relevance is its quality for the low class (Eq. 2 with the class known),
        # not the success heads' R̂, which never saw a request like it and rates a greeting
        # 0.5 on the small tier and 0.8 on the large one
        probabilities, success = {"low": 1.0}, None
    chosen_profile = settings.profile(profile_name)
    if pools is None and chosen_profile.cost_basis == "billed":
        pools = warm_pools(settings, profile_name, time_of_day)
    billing = Billing(pools or {},
                      chosen_profile.scaling.cooldown_seconds) \
        if chosen_profile.cost_basis == "billed" else None
    scored = score([*candidates, *full], probabilities, chosen_profile.weights,
                   Ranges.of(settings.services, billing), success, billing)
    best = max(b.relevance for b in scored[: len(candidates)])
    everything = list(zip([*candidates, *full], scored, strict=True))
    ranked = everything[: len(candidates)]
    lowest = 0  # the lowest tier the request may go to, overflow included
    reference = best  # what the bound and each candidate's relevance_gap are measured from
    if model is None:
        rule = settings.routing.trade_down_for(profile_name)
        complexity = complexity or _most_probable(probabilities)
        if settled:
            rule = settled_floor(rule)
        lowest = lowest_tier(rule, complexity)
        # the relevance bound holds against the best the request can have without a cold
        # start (a full warm service counts: a request queues there): a better model at
        # zero replicas is woken only where Eq. 2 finds it worth its start (its T̂ and Ĉ pay
        # it), never because the bound left nothing warm to answer
        reference = max((b.relevance for v, b in everything
                         if v.warm and TIERS.index(v.model.tier) >= lowest), default=best)
        in_floor = within_floor(ranked, rule, complexity, reference, strict=True)
        # nothing the floor allows has a free slot (a burst): queue at a full warm service of
        # an allowed tier rather than send the prompt below the floor; only when there is
        # none either is the request served by what is free (its relevance_gap says so)
        full_in_floor = [(v, b) for v, b in everything[len(candidates):]
                         if TIERS.index(v.model.tier) >= lowest]
        ranked = in_floor or full_in_floor or ranked
    ordered = STRATEGIES[strategy_name](ranked, rng)
    # only the candidates the decision carries are built (the rest cost time, not routes)
    picked = [_candidate(view, breakdown, reference)
              for view, breakdown in ordered[: 1 + RUNNERS_UP]]
    return Decision(profile_name, strategy_name, picked[0], tuple(picked[1:]),
                    _overflow(everything, {c.service for c in picked}, reference, lowest))


def _overflow(everything: Ranked, taken: set[str], best: float,
              lowest: int) -> tuple[Candidate, ...]:
    """Warm services the decision does not carry yet, of a tier the request may go to (the
    floor's tier rule: a high prompt spills over to no small model under quality and
    balanced), those with a free slot first, each group by Eq. 2 score: where a request goes
    rather than waiting for a cold start."""
    warm = [(v, b) for v, b in everything if v.warm and v.service.name not in taken
            and TIERS.index(v.model.tier) >= lowest]
    warm.sort(key=lambda vb: (not vb[0].has_capacity, -vb[1].score))
    return tuple(_candidate(v, b, best) for v, b in warm[:RUNNERS_UP])


def within_floor(ranked: Ranked, rule: TradeDown, complexity: str, best: float, *,
                 strict: bool = False) -> Ranked:
    """The candidates the profile's floor allows; all of them when none is allowed (the
    request is still served, and its breakdown's `relevance_gap` shows what was lost), or
    none with `strict`; `best` is the best R̂ among all the candidates."""
    lowest = lowest_tier(rule, complexity)
    kept = [(v, b) for v, b in ranked if TIERS.index(v.model.tier) >= lowest
            and _gap(best, b) <= rule.relevance + 1e-9]
    return kept if strict else kept or ranked


def settled_floor(rule: TradeDown) -> TradeDown:
    """The floor for a prompt whose class the short-prompt rule settled: the tier rule with
    `settled_tiers` and no relevance bound when the profile sets `settled_tiers`, else the
    profile's own floor (a settled low class is scored on the models' quality for it, so its
    relevance bound keeps only models that answer easy requests well)."""
    if rule.settled_tiers is not None:
        return TradeDown(tiers=rule.settled_tiers, relevance=1.0)
    return rule


def lowest_tier(rule: TradeDown, complexity: str) -> int:
    """The index in TIERS of the lowest tier a prompt of `complexity` may go to: its class
    (low 0, medium 1, high 2) less the profile's `tiers`."""
    return max(0, COMPLEXITY_CLASSES.index(complexity) - rule.tiers) \
        if complexity in COMPLEXITY_CLASSES else 0


def _most_probable(probabilities: Mapping[str, float]) -> str:
    known = {k: v for k, v in probabilities.items() if k in COMPLEXITY_CLASSES}
    return max(known, key=lambda k: known[k]) if known else "medium"


def _gap(best: float, breakdown: ScoreBreakdown) -> float:
    """What choosing `breakdown`'s service gives up against `best` (0 for a better one)."""
    return max(0.0, round(best - breakdown.relevance, 6))


def _candidate(view: ServiceView, breakdown: ScoreBreakdown, best: float) -> Candidate:
    return Candidate(
        service=view.service.name,
        model=view.model.name,
        backend=view.service.backend,
        endpoint=view.service.endpoint,
        breakdown=breakdown.model_copy(update={"relevance_gap": _gap(best, breakdown)}),
        warm=view.warm,
        full=view.warm and not view.has_capacity,
    )
