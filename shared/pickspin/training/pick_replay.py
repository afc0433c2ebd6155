"""The whole Pick replayed on held-out rows: router → paper Eq. 2 selection over the configured
matrix → the real outcome of the model it chose.

Each configured model inherits, per labelled source, the real outcomes of its stand-in
(`labels.stand_in`: its tier's labelled model, or its override); a model without a stand-in
on a source (Gemma 3 270M outside MMLU-Pro) is left out there by marking its services
unhealthy, so no decision can land on an outcome that does not exist. Every service runs on
its warm priors (latency, cost per query from the values file). Reported per source and
configuration: accuracy, cost per query relative to always-large, and expected latency —
the layout of the paper's Table 3.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pickspin.core.events import ServiceStats
from pickspin.core.scoring import cost_per_query
from pickspin.core.selection import select
from pickspin.core.settings import (
    COMPLEXITY_CLASSES,
    TIERS,
    Service,
    Settings,
    StrategyName,
    TradeDown,
)
from pickspin.training.data import Example
from pickspin.training.labels import TIER_MAPS, is_correct, stand_in

Progress = Callable[[str], None]
ALWAYS = {"small": "gemma-3-27b", "medium": "llama-3-70b", "large": "deepseek-r1"}
STRATEGIES = (StrategyName.MULTI_OBJECTIVE, StrategyName.RANDOM, StrategyName.LATENCY)


@dataclass(frozen=True)
class PickFigures:
    accuracy: float
    relative_cost: float
    latency_seconds: float
    rows: int


@dataclass(frozen=True)
class RouterRow:
    """What the router said of one prompt (class, class probabilities, success per tier)."""

    complexity: str
    probabilities: Mapping[str, float]
    success: Mapping[str, float]
    settled: bool = False  # the hybrid's short-prompt rule settled the class


def stand_ins(settings: Settings) -> dict[str, dict[str, str | None]]:
    """source → configured model → the labelled model whose outcomes it inherits."""
    return {src: {m.name: stand_in(m.name, m.tier, src) for m in settings.models}
            for src in TIER_MAPS}


def _price(svc: Service) -> float:
    return cost_per_query(svc, svc.priors.latency_seconds)


def _outcome(ex: Example, who: str | None) -> bool | None:
    if who is None or ex.outcome is None:
        return None
    return is_correct(ex.outcome.scores.get(who))


def replay_pick(settings: Settings, rows: Sequence[Example], said: Sequence[RouterRow],
                seed: int = 13, progress: Progress = lambda _m: None,
                profiles: Sequence[str] | None = None) -> dict[str, dict[str, PickFigures]]:
    """source → configuration → figures. Configurations: `<profile>/<strategy>` for every
    profile and strategy, `random-assignment` (uniform over models, no floor),
    `always-small|medium|large` and `oracle` (the cheapest service that answered).
    `random-assignment` is its expectation (each model with an outcome on the row, equally
    weighted, at its cheapest service), not one draw."""
    rng = random.Random(seed)
    who = stand_ins(settings)
    cheapest = {m.name: min((s for s in settings.services if s.model == m.name), key=_price)
                for m in settings.models}
    out: dict[str, dict[str, PickFigures]] = {}
    total, done = len(rows), 0
    for source in TIER_MAPS:
        idx = [i for i, e in enumerate(rows) if e.outcome and e.outcome.source == source]
        if not idx:
            continue
        acc: dict[str, list[tuple[bool, float, float, float]]] = {}
        add = _adder(acc)
        for i in idx:
            ex, r = rows[i], said[i]
            ok = {m.name: _outcome(ex, who[source][m.name]) for m in settings.models}
            usable = [s for s in settings.services if ok[s.model] is not None]
            stats = {s.name: ServiceStats(healthy=False) for s in settings.services
                     if ok[s.model] is None}
            for profile in profiles or settings.profiles:
                for strategy in STRATEGIES:
                    d = select(settings, stats, r.probabilities, profile=profile,
                               strategy=strategy.value, rng=rng, complexity=r.complexity,
                               success=r.success or None, settled=r.settled)
                    add(f"{profile}/{strategy.value}", settings.service(d.chosen.service),
                        bool(ok[d.chosen.model]))
            # random assignment's expectation: every model with an outcome, equally weighted
            # (a draw per row would add ±0.01–0.03 of sampling noise on a few hundred rows,
            # and would shift with every other use of the shared generator)
            models = sorted({s.model for s in usable})
            for m in models:
                add("random-assignment", cheapest[m], bool(ok[m]), 1 / len(models))
            for tier, model in ALWAYS.items():
                if ok.get(model) is not None:
                    add(f"always-{tier}", cheapest[model], bool(ok[model]))
            winners = [s for s in usable if ok[s.model]]
            best = min(winners or usable, key=_price)
            add("oracle", best, bool(ok[best.model]))
            done += 1
            if done % 200 == 0 or done == total:
                progress(_bar(done, total))
        out[source] = _figures(acc)
    return out


# Trade-down bounds tried for a profile's floor on dev, loosest first (quality's is 0.05).
FLOOR_GRID = (0.15, 0.12, 0.10, 0.08, 0.06)
# The share of always-large's cost a profile may spend on dev when its floor is chosen: the
# issue's budget for balanced is 0.5 on held-out rows; 0.1 is kept for dev → test drift.
FLOOR_BUDGET = {"balanced": 0.4}


@dataclass(frozen=True)
class FloorChoice:
    profile: str
    relevance: float
    # bound → source → (accuracy, relative cost) of `<profile>/multi-objective` on dev
    dev: Mapping[float, Mapping[str, tuple[float, float]]]


def choose_floor(settings: Settings, dev: Sequence[Example], said: Sequence[RouterRow],
                 profile: str = "balanced", seed: int = 13) -> FloorChoice:
    """The profile's trade-down `relevance` bound chosen on dev rows: the best mean accuracy
    over the sets among the bounds whose relative cost stays within `FLOOR_BUDGET` on every
    set (none within: the loosest bound). The tier rule (`tiers`) is kept."""
    budget = FLOOR_BUDGET.get(profile, 1.0)
    rule = settings.routing.trade_down_for(profile)
    dev_figures: dict[float, dict[str, tuple[float, float]]] = {}
    for bound in FLOOR_GRID:
        tried = _with_floor(settings, profile, rule.tiers, bound)
        figures = replay_pick(tried, dev, said, seed, profiles=(profile,))
        dev_figures[bound] = {
            src: (round(by[f"{profile}/multi-objective"].accuracy, 4),
                  round(by[f"{profile}/multi-objective"].relative_cost, 4))
            for src, by in figures.items()}
    within = [b for b, by in dev_figures.items() if max(c for _, c in by.values()) <= budget]
    chosen = max(within, key=lambda b: (np.mean([a for a, _ in dev_figures[b].values()]), b)) \
        if within else FLOOR_GRID[0]
    return FloorChoice(profile, chosen, dev_figures)


def _with_floor(settings: Settings, profile: str, tiers: int, bound: float) -> Settings:
    rule = TradeDown(tiers=tiers, relevance=bound)
    routing = settings.routing.model_copy(
        update={"trade_down": {**settings.routing.trade_down, profile: rule}})
    return settings.model_copy(update={"routing": routing})


def _figures(acc: dict[str, list[tuple[bool, float, float, float]]]) -> dict[str, PickFigures]:
    """Weighted means per configuration; cost relative to always-large's."""
    def mean(v: list[tuple[bool, float, float, float]], at: int) -> float:
        w = np.array([e[3] for e in v])
        return float(np.dot([float(e[at]) for e in v], w) / w.sum())

    large_cost = mean(acc["always-large"], 1)
    return {name: PickFigures(mean(v, 0), mean(v, 1) / large_cost, mean(v, 2),
                              round(sum(e[3] for e in v)))
            for name, v in acc.items()}


def _adder(acc: dict[str, list[tuple[bool, float, float, float]]]
           ) -> Callable[..., None]:
    def add(name: str, svc: Service, ok: bool, weight: float = 1.0) -> None:
        acc.setdefault(name, []).append((ok, _price(svc), svc.priors.latency_seconds, weight))
    return add


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(total, 1))
    return f"whole Pick [{'#' * filled}{'.' * (width - filled)}] {done}/{total} rows"


def router_rows(probs: np.ndarray, classes: Sequence[str], success: np.ndarray,
                names: Sequence[str] = TIERS, settled: Sequence[bool] | None = None
                ) -> list[RouterRow]:
    """`offline.RouterOutput` columns → one `RouterRow` per prompt; `names` names the success
    columns (the tiers, then any models with their own head)."""
    out = []
    flags = settled if settled is not None else [False] * len(classes)
    for p, c, s, f in zip(probs, classes, success, flags, strict=True):
        succ = {} if np.isnan(s).any() else {t: float(v) for t, v in zip(names, s, strict=True)}
        out.append(RouterRow(c, {k: float(v) for k, v in zip(COMPLEXITY_CLASSES, p,
                                                               strict=True)}, succ, bool(f)))
    return out


def table3(figures: Mapping[str, Mapping[str, PickFigures]], profile: str) -> list[str]:
    """Markdown: the paper's Table 3 side by side per set, for one profile."""
    sources = list(figures)
    rows = [f"{profile}/multi-objective", f"{profile}/random", f"{profile}/latency",
            "random-assignment", "always-small", "always-medium", "always-large", "oracle"]
    head = "| strategy | " + " | ".join(f"{s}: accuracy / rel. cost / latency s"
                                        for s in sources) + " |"
    lines = [head, "|---|" + "---|" * len(sources)]
    for name in rows:
        cells = []
        for s in sources:
            f = figures[s].get(name)
            cells.append("–" if f is None else
                         f"{f.accuracy:.3f} / {f.relative_cost:.2f} / {f.latency_seconds:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
