"""Pure evaluation: classifier confusion matrices, and routing quality against relative cost.

A router is turned into a routing policy the way the selector uses it (paper Eq. 2 with the
latency term left out): send prompt i to the tier L maximising R̂(p_i, L) − λ·cost_i(L),
where R̂(p, L) = Σ_k p_k·quality(L, k) with quality estimated on dev rows. Sweeping λ traces
accuracy against cost; nothing is fitted on the evaluation rows.

APGR (RouteLLM): the performance gap recovered, (acc − acc_small)/(acc_large − acc_small),
averaged over a uniform cost grid from always-small to always-large cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pickspin.core.settings import COMPLEXITY_CLASSES

LAMBDAS = tuple(np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 400)]).tolist())
GRID = 101


def confusion(truth: Sequence[str], predicted: Sequence[str]) -> list[list[int]]:
    """Rows = true class, columns = predicted class, in COMPLEXITY_CLASSES order."""
    idx = {c: i for i, c in enumerate(COMPLEXITY_CLASSES)}
    m = [[0] * len(idx) for _ in idx]
    for t, p in zip(truth, predicted, strict=True):
        m[idx[t]][idx[p]] += 1
    return m


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth \
        else 0.0


def per_class_recall(matrix: Sequence[Sequence[int]]) -> dict[str, float]:
    return {c: (row[i] / sum(row) if sum(row) else 0.0)
            for i, (c, row) in enumerate(zip(COMPLEXITY_CLASSES, matrix, strict=True))}


@dataclass(frozen=True)
class Point:
    cost: float
    accuracy: float
    label: str = ""


@dataclass(frozen=True)
class RoutingQuality:
    """One router on one labelled set's test rows (costs relative: always-large = 1)."""

    router: str
    curve: tuple[Point, ...]
    small: Point
    medium: Point
    large: Point
    oracle: Point
    apgr: float
    random_mix_apgr: float
    cost_to_match_large: float | None
    best_accuracy: float
    min_margin_over_random: float
    share_above_random: float
    # relative cost (always-large = 1) to recover 50 % / 80 % of the small→large gap (RouteLLM's
    # call-performance thresholds), for the router and for the random mix
    cost_at_gap: tuple[float | None, float | None] = (None, None)
    random_cost_at_gap: tuple[float | None, float | None] = (None, None)


def policy(probs: np.ndarray, quality: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """Chosen tier per row: argmax_L Σ_k p_k q[L, k] − λ·cost[L]."""
    relevance = probs @ quality.T  # n × tiers
    chosen: np.ndarray = np.argmax(relevance - lam * costs, axis=1)
    return chosen


def random_mix(points: Sequence[Point], cost: float) -> float:
    """Accuracy of randomly mixing tiers at `cost`: the upper hull through the tier points."""
    pts = sorted(points, key=lambda p: p.cost)
    hull: list[Point] = []
    for p in pts:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (b.cost - a.cost) * (p.accuracy - a.accuracy) - \
                (b.accuracy - a.accuracy) * (p.cost - a.cost)
            if cross >= 0:  # b lies on or under the segment a→p
                hull.pop()
            else:
                break
        hull.append(p)
    xs, ys = [p.cost for p in hull], [p.accuracy for p in hull]
    return float(np.interp(cost, xs, ys))


def _curve_accuracy(curve: Sequence[Point], cost: float) -> float:
    xs = [p.cost for p in curve]
    ys = [p.accuracy for p in curve]
    return float(np.interp(cost, xs, ys))


def cost_for(accuracy_at: Callable[[float], float], target: float, low: float,
             high: float) -> float | None:
    """Smallest cost in [low, high] at which `accuracy_at` reaches `target` (grid search)."""
    for cost in np.linspace(low, high, 1001):
        if accuracy_at(float(cost)) >= target - 1e-12:
            return float(cost)
    return None


def routing_quality(router: str, probs: np.ndarray, correct: np.ndarray, costs: np.ndarray,
                    quality: np.ndarray, expected_cost: Sequence[float] | None = None
                    ) -> RoutingQuality:
    """probs n×3 (classes), correct n×3 (tiers, 0/1), costs n×3 (tiers, realised), quality 3×3.

    The policy decides with `expected_cost` per tier (known before answering; default: the
    mean realised cost); the realised per-row costs are only measured, never decided on.
    """
    scale = costs[:, 2].mean()
    costs = costs / scale
    decide = np.asarray(expected_cost if expected_cost is not None else costs.mean(axis=0),
                        dtype=float)
    decide = np.tile(decide / decide[2], (len(probs), 1))
    rows = np.arange(len(probs))
    seen: dict[tuple[int, ...], Point] = {}
    for lam in LAMBDAS:
        tier = policy(probs, quality, decide, lam)
        key = (*np.bincount(tier, minlength=3).tolist(), hash(tier.tobytes()))
        seen.setdefault(key, Point(float(costs[rows, tier].mean()),
                                   float(correct[rows, tier].mean()), f"λ={lam:.3g}"))
    tiers = [Point(float(costs[:, t].mean()), float(correct[:, t].mean()), name)
             for t, name in enumerate(("always-small", "always-medium", "always-large"))]
    curve = tuple(sorted({*seen.values(), tiers[0], tiers[2]}, key=lambda p: (p.cost, -p.accuracy)))
    first_ok = np.where(correct.any(axis=1), correct.argmax(axis=1), 0)
    oracle = Point(float(costs[rows, first_ok].mean()), float(correct.any(axis=1).mean()),
                   "oracle")
    small, large = tiers[0], tiers[2]
    grid = np.linspace(small.cost, large.cost, GRID)
    gap = (large.accuracy - small.accuracy) or 1e-9
    apgr = float(np.mean([(_curve_accuracy(curve, c) - small.accuracy) / gap for c in grid]))
    mix_apgr = float(np.mean([(random_mix(tiers, c) - small.accuracy) / gap for c in grid]))
    reach = [p.cost for p in curve if p.accuracy >= large.accuracy]
    inside = [p for p in curve if small.cost < p.cost < large.cost]
    margins = [p.accuracy - random_mix(tiers, p.cost) for p in inside]
    targets = [small.accuracy + g * gap for g in (0.5, 0.8)]

    def rel(c: float | None) -> float | None:
        return None if c is None else c / large.cost

    router_at = [rel(cost_for(lambda c: _curve_accuracy(curve, c), t, small.cost, large.cost))
                 for t in targets]
    mix_at = [rel(cost_for(lambda c: random_mix(tiers, c), t, small.cost, large.cost))
              for t in targets]
    return RoutingQuality(
        router, curve, tiers[0], tiers[1], tiers[2], oracle, apgr, mix_apgr,
        (min(reach) / large.cost) if reach else None,
        max(p.accuracy for p in curve),
        min(margins) if margins else 0.0,
        float(np.mean([m > 0 for m in margins])) if margins else 0.0,
        (router_at[0], router_at[1]), (mix_at[0], mix_at[1]),
    )
