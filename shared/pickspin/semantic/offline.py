"""Offline evaluation: run keyword, semantic and hybrid over the held-out rows and measure them.

Train and dev rows give the quality table, dev rows the expected per-tier cost the policy
decides on; test rows are only measured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pickspin.routers import Classification, KeywordRouter
from pickspin.semantic.data import Example
from pickspin.semantic.evaluate import (
    RoutingQuality,
    accuracy,
    confusion,
    per_class_recall,
    routing_quality,
)
from pickspin.semantic.hybrid import combine
from pickspin.semantic.labels import TIER_MAPS, represented_by_tier
from pickspin.semantic.quality import QualityTable, estimate_quality, tier_quality
from pickspin.semantic.runtime import SemanticRouter
from pickspin.settings import COMPLEXITY_CLASSES, TIERS, Settings

ROUTERS = ("keyword", "semantic", "hybrid")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClassifierMetrics:
    router: str
    accuracy: float
    per_class: Mapping[str, float]
    per_benchmark: Mapping[str, float]
    confusion: list[list[int]]


@dataclass(frozen=True)
class Evaluation:
    rows: Mapping[str, int]
    classifier: Mapping[str, ClassifierMetrics]
    routing: Mapping[str, Mapping[str, RoutingQuality]]  # source → router → quality
    quality_table: QualityTable
    tier_costs: Mapping[str, float]
    hybrid_share_keyword: float


def tier_costs(settings: Settings) -> dict[str, float]:
    """Relative cost per tier, large = 1: the cheapest service's GPU-hour price among the
    configured models the tier's stand-ins represent (models with an override are not)."""
    per_tier: dict[str, float] = {}
    for svc in settings.services:
        if not represented_by_tier(svc.model):
            continue
        tier = settings.model(svc.model).tier
        price = svc.gpus * svc.cost_per_gpu_hour
        per_tier[tier] = min(per_tier.get(tier, price), price)
    top = per_tier.get("large") or max(per_tier.values())
    return {t: per_tier.get(t, top) / top for t in TIERS}


def all_probabilities(rows: Sequence[Example], semantic: SemanticRouter, keyword: KeywordRouter,
                      threshold: float, progress: Progress, batch: int = 64
                      ) -> tuple[dict[str, np.ndarray], float]:
    """n × 3 class probabilities per router, and the share of rows hybrid left to keywords."""
    sem = []
    for i in range(0, len(rows), batch):
        probs, _ = semantic.probabilities([r.text for r in rows[i : i + batch]])
        sem.append(probs)
        if (i // batch) % 20 == 0:
            progress(f"semantic: {min(i + batch, len(rows))}/{len(rows)} rows")
    sem_probs = np.concatenate(sem) if sem else np.zeros((0, 3))
    kw, hy, kept = [], [], 0
    for r, p in zip(rows, sem_probs, strict=True):
        k = keyword.classify(r.text)
        s = Classification.from_probabilities(dict(zip(COMPLEXITY_CLASSES, p, strict=True)),
                                              "semantic")
        verdict = combine(k, s, threshold)
        kept += verdict.decided_by == "keyword"
        kw.append([k.probabilities[c] for c in COMPLEXITY_CLASSES])
        hy.append([verdict.classification.probabilities[c] for c in COMPLEXITY_CLASSES])
    return ({"keyword": np.array(kw), "semantic": sem_probs, "hybrid": np.array(hy)},
            kept / max(len(rows), 1))


def _predicted(probs: np.ndarray) -> list[str]:
    return [COMPLEXITY_CLASSES[i] for i in probs.argmax(axis=1)]


def classifier_metrics(router: str, rows: Sequence[Example], probs: np.ndarray
                       ) -> ClassifierMetrics:
    truth, pred = [r.label for r in rows], _predicted(probs)
    matrix = confusion(truth, pred)
    per_bench: dict[str, list[bool]] = {}
    for r, p in zip(rows, pred, strict=True):
        per_bench.setdefault(r.benchmark, []).append(r.label == p)
    return ClassifierMetrics(router, accuracy(truth, pred), per_class_recall(matrix),
                             {b: float(np.mean(v)) for b, v in sorted(per_bench.items())},
                             matrix)


def _costs_of(rows: Sequence[Example], source: str, costs: Mapping[str, float]) -> np.ndarray:
    models = TIER_MAPS[source].models
    out = []
    for r in rows:
        real = r.outcome.cost_usd if r.outcome else {}
        out.append([real[m] if m in real else costs[t] for m, t in zip(models, TIERS,
                                                                       strict=True)])
    return np.array(out, dtype=float)


def evaluate(settings: Settings, examples: Sequence[Example], semantic: SemanticRouter,
             progress: Progress = print) -> Evaluation:
    keyword = KeywordRouter(settings.routing.keywords)
    threshold = settings.routing.hybrid_threshold
    dev = [e for e in examples if e.split == "dev"]
    test = [e for e in examples if e.split == "test"]
    progress(f"classifying {len(test)} test rows with each router")
    test_probs, share = all_probabilities(test, semantic, keyword, threshold, progress)
    classifier = {name: classifier_metrics(name, test, test_probs[name]) for name in ROUTERS}
    costs = tier_costs(settings)
    routing: dict[str, dict[str, RoutingQuality]] = {}
    fit_rows = [e for e in examples if e.split != "test"]  # quality table: never test rows
    for source in TIER_MAPS:
        d_idx = [i for i, e in enumerate(dev) if e.outcome and e.outcome.source == source]
        t_idx = [i for i, e in enumerate(test) if e.outcome and e.outcome.source == source]
        if not t_idx or not d_idx:
            continue
        t_rows = [test[i] for i in t_idx]
        correct = np.array([[float(x) for x in r.outcome.correct] for r in t_rows  # type: ignore[union-attr]
                            ])
        row_costs = _costs_of(t_rows, source, costs)
        # decisions use per-tier mean cost of dev rows: realised test costs include the
        # answers' length, which no router knows in advance
        expected = _costs_of([dev[i] for i in d_idx], source, costs).mean(axis=0).tolist()
        routing[source] = {}
        quality = np.array(tier_quality(source, fit_rows))
        for name in ROUTERS:
            routing[source][name] = routing_quality(
                name, test_probs[name][t_idx], correct, row_costs, quality, expected)
        progress(f"routing quality on {source}: {len(t_idx)} held-out rows")
    table = estimate_quality(settings, fit_rows)
    rows = {"dev": len(dev), "test": len(test),
            **{f"test:{s}": sum(1 for e in test if e.outcome and e.outcome.source == s)
               for s in TIER_MAPS}}
    return Evaluation(rows, classifier, routing, table, costs, share)


def summary(ev: Evaluation) -> dict[str, Any]:
    """The headline figures, JSON-ready."""
    out: dict[str, Any] = {"rows": dict(ev.rows), "hybrid_share_decided_by_keyword":
                           round(ev.hybrid_share_keyword, 4), "tier_costs": dict(ev.tier_costs),
                           "classifier": {}, "routing": {}, "quality": ev.quality_table}
    for name, m in ev.classifier.items():
        out["classifier"][name] = {"accuracy": round(m.accuracy, 4),
                                   "per_class_recall": {k: round(v, 4)
                                                        for k, v in m.per_class.items()},
                                   "per_benchmark": {k: round(v, 4)
                                                     for k, v in m.per_benchmark.items()},
                                   "confusion": m.confusion}
    for source, by_router in ev.routing.items():
        out["routing"][source] = {}
        for name, q in by_router.items():
            out["routing"][source][name] = {
                "apgr": round(q.apgr, 4), "random_mix_apgr": round(q.random_mix_apgr, 4),
                "cost_to_match_large": None if q.cost_to_match_large is None
                else round(q.cost_to_match_large, 4),
                "best_accuracy": round(q.best_accuracy, 4),
                "cost_to_recover_50_80_pct_of_gap": [_r(c) for c in q.cost_at_gap],
                "random_mix_cost_to_recover_50_80_pct_of_gap":
                    [_r(c) for c in q.random_cost_at_gap],
                "min_margin_over_random_mix": round(q.min_margin_over_random, 4),
                "share_of_points_above_random_mix": round(q.share_above_random, 4),
                "always_small": round(q.small.accuracy, 4),
                "always_medium": round(q.medium.accuracy, 4),
                "always_large": round(q.large.accuracy, 4),
                "oracle": [round(q.oracle.cost, 4), round(q.oracle.accuracy, 4)],
            }
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
