"""Offline evaluation: run keyword, semantic and hybrid over the held-out rows and measure them.

Train and dev rows give the quality table, dev rows the expected per-tier cost the policy
decides on; test rows are only measured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pickspin.core.routers import KeywordRouter, Router
from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS, Settings
from pickspin.semantic.heads import brier, ece
from pickspin.training.data import Example
from pickspin.training.evaluate import (
    RoutingQuality,
    accuracy,
    confusion,
    per_class_recall,
    routing_quality,
)
from pickspin.training.labels import TIER_MAPS, represented_by_tier
from pickspin.training.outputs import (
    RouterOutput,
    all_outputs,
    hybrid_of,
    semantic_outputs,
    settled_classes,
)
from pickspin.training.pick_replay import (
    FloorChoice,
    PickFigures,
    choose_floor,
    replay_pick,
    router_rows,
    stand_ins,
)
from pickspin.training.quality import QualityTable, estimate_quality, tier_quality
from pickspin.training.targets import model_targets

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
    classifier_proxy: Mapping[str, ClassifierMetrics] = field(default_factory=dict)
    # the most common class of the training rows, and its accuracy on held-out rows
    most_common: tuple[str, float] = ("low", 0.0)
    calibration: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    hybrid_threshold_on_dev: float | None = None
    hybrid_dev_apgr: Mapping[float, float] = field(default_factory=dict)
    # the whole Pick (default router + Eq. 2 selection + matrix): source → config → figures
    pick: Mapping[str, Mapping[str, PickFigures]] = field(default_factory=dict)
    pick_router: str = ""
    stand_ins: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    # the balanced profile's trade-down bound, chosen on dev with the default router
    floor: FloorChoice | None = None


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


def classifier_metrics(router: str, rows: Sequence[Example], pred: Sequence[str]
                       ) -> ClassifierMetrics:
    truth = [r.label for r in rows]
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


THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # keyword confidence tops at 0.85: 1.0 = never
MIN_RECALL = 0.35  # issue 8: every class's recall at least this


def _source_rows(rows: Sequence[Example], source: str) -> list[int]:
    return [i for i, e in enumerate(rows) if e.outcome and e.outcome.source == source]


def _correct(rows: Sequence[Example]) -> np.ndarray:
    return np.array([[float(x) for x in r.outcome.correct] for r in rows  # type: ignore[union-attr]
                     ]).reshape(len(rows), 3)


def routing_by_source(rows: Sequence[Example], outputs: Mapping[str, RouterOutput],
                      dev: Sequence[Example], fit_rows: Sequence[Example],
                      costs: Mapping[str, float]) -> dict[str, dict[str, RoutingQuality]]:
    """Routing quality per labelled source and router over `rows` (decisions use dev rows'
    mean tier costs and, for routers without success estimates, the train + dev table)."""
    out: dict[str, dict[str, RoutingQuality]] = {}
    for source in TIER_MAPS:
        idx, d_idx = _source_rows(rows, source), _source_rows(dev, source)
        if not idx or not d_idx:
            continue
        sel = [rows[i] for i in idx]
        # realised costs include the answers' length, which no router knows in advance
        expected = _costs_of([dev[i] for i in d_idx], source, costs).mean(axis=0).tolist()
        quality = np.array(tier_quality(source, fit_rows))
        out[source] = {
            name: routing_quality(name, o.take(idx).relevance(quality), _correct(sel),
                                  _costs_of(sel, source, costs), np.eye(3), expected)
            for name, o in outputs.items()}
    return out


def choose_threshold(dev: Sequence[Example], keyword: KeywordRouter, sem: RouterOutput,
                     fit_rows: Sequence[Example], costs: Mapping[str, float],
                     settle_words: int = 0) -> tuple[float, dict[float, float]]:
    """The hybrid threshold with the best mean APGR over the sources on dev rows, then every
    class's dev recall at least MIN_RECALL, then the best dev class accuracy (with success
    estimates, APGR does not depend on it)."""
    kw = [keyword.classify(e.text) for e in dev]
    settles = settled_classes(dev, keyword, settle_words)
    truth = [e.label for e in dev]
    scores: dict[float, float] = {}
    acc: dict[float, float] = {}
    recall_ok: dict[float, bool] = {}
    for t in THRESHOLDS:
        out = hybrid_of(kw, sem, t, settles)
        by_source = routing_by_source(dev, {"hybrid": out}, dev, fit_rows, costs)
        scores[t] = round(float(np.mean([q["hybrid"].apgr for q in by_source.values()])), 4)
        acc[t] = accuracy(truth, out.classes)
        recall = per_class_recall(confusion(truth, out.classes))
        recall_ok[t] = min(recall.values()) >= MIN_RECALL
    return max(scores, key=lambda t: (scores[t], recall_ok[t], acc[t], t)), scores


def _dev_output(settings: Settings, dev: Sequence[Example], keyword: KeywordRouter,
                sem: RouterOutput) -> RouterOutput:
    """The default router's output on dev rows (the semantic one's is given)."""
    mode = settings.routing.mode.value
    if mode == "semantic":
        return sem
    kw = [keyword.classify(e.text) for e in dev]
    if mode == "hybrid":
        return hybrid_of(kw, sem, settings.routing.hybrid_threshold,
                         settled_classes(dev, keyword, settings.routing.settle_words))
    return RouterOutput(np.array([[k.probabilities[c] for c in COMPLEXITY_CLASSES]
                                  for k in kw]).reshape(-1, 3),
                        [k.complexity for k in kw], np.full((len(dev), 3), np.nan))


def calibration(sem: RouterOutput, rows: Sequence[Example], settings: Settings | None = None
                ) -> dict[str, dict[str, float]]:
    """Brier score and ECE of each tier's success estimate against its real outcome; for a
    model with its own head, against its own stand-in's outcomes (rows where it has one)."""
    if not rows or np.isnan(sem.success).all():
        return {}
    y = _correct(rows)
    p = sem.success[:, : len(TIERS)]

    def figures(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
        return {"brier": round(brier(pred, obs), 4), "ece": round(ece(pred, obs), 4),
                "mean_predicted": round(float(pred.mean()), 4),
                "mean_observed": round(float(obs.mean()), 4)}

    out = {t: figures(p[:, i], y[:, i]) for i, t in enumerate(TIERS)}
    out["all"] = {"brier": round(brier(p, y), 4), "ece": round(ece(p.ravel(), y.ravel()), 4)}
    extra = [(j, n) for j, n in enumerate(sem.names) if j >= len(TIERS)]
    if settings is not None and extra:
        tiers_of = {m.name: m.tier for m in settings.models}
        named = [(j, n) for j, n in extra if n in tiers_of]
        y_m, m_m = model_targets(rows, [(n, tiers_of[n]) for _, n in named])
        for k, (j, name) in enumerate(named):
            seen = m_m[:, k] > 0
            if seen.any():
                out[name] = figures(sem.success[seen, j], y_m[seen, k])
    return out


def evaluate(settings: Settings, examples: Sequence[Example], semantic: Router,
             progress: Progress = print, seed: int = 13) -> Evaluation:
    """Every router on the held-out rows. Headline figures use rows with real outcomes;
    proxy-labelled rows are measured separately."""
    keyword = KeywordRouter(settings.routing.keywords)
    threshold = settings.routing.hybrid_threshold
    dev = [e for e in examples if e.split == "dev" and e.outcome]
    test = [e for e in examples if e.split == "test"]
    real = [e for e in test if e.outcome]
    proxy = [e for e in test if not e.outcome]
    fit_rows = [e for e in examples if e.split != "test"]  # quality table: never test rows
    costs = tier_costs(settings)
    progress(f"dev: {len(dev)} rows with real outcomes (hybrid threshold)")
    dev_sem = semantic_outputs(dev, semantic, progress)
    settle_words = settings.routing.settle_words
    best_t, t_scores = choose_threshold(dev, keyword, dev_sem, fit_rows, costs, settle_words)
    dev_used = _dev_output(settings, dev, keyword, dev_sem)
    floor = choose_floor(settings, dev, router_rows(dev_used.probs, dev_used.classes,
                                                    dev_used.success, dev_used.names,
                                                    dev_used.settled), seed=seed)
    progress(f"balanced floor on dev: relevance {floor.relevance:g}")
    progress(f"classifying {len(real)} held-out rows with real outcomes and {len(proxy)} "
             "proxy-labelled rows with each router")
    outputs, share = all_outputs(real, semantic, keyword, threshold, progress, settle_words)
    p_out, _ = all_outputs(proxy, semantic, keyword, threshold, progress, settle_words)
    classifier = {n: classifier_metrics(n, real, o.classes) for n, o in outputs.items()}
    classifier_proxy = {n: classifier_metrics(n, proxy, o.classes) for n, o in p_out.items()}
    train_labels = [e.label for e in examples if e.split == "train" and e.outcome]
    common = max(COMPLEXITY_CLASSES, key=train_labels.count) if train_labels else "low"
    routing = routing_by_source(real, outputs, dev, fit_rows, costs)
    table = estimate_quality(settings, fit_rows)
    rows = {"dev": len(dev), "test": len(real), "test_proxy": len(proxy),
            **{f"test:{s}": len(_source_rows(real, s)) for s in TIER_MAPS}}
    used = outputs[settings.routing.mode.value]
    progress(f"whole Pick with the {settings.routing.mode.value} router on {len(real)} rows")
    pick = replay_pick(settings, real, router_rows(used.probs, used.classes, used.success,
                                                   used.names, used.settled), seed, progress)
    return Evaluation(rows, classifier, routing, table, costs, share, classifier_proxy,
                      (common, accuracy([e.label for e in real], [common] * len(real))),
                      calibration(outputs["semantic"], real, settings), best_t, t_scores, pick,
                      settings.routing.mode.value, stand_ins(settings), floor)


def summary(ev: Evaluation) -> dict[str, Any]:
    """The headline figures, JSON-ready."""
    out: dict[str, Any] = {
        "rows": dict(ev.rows), "hybrid_share_decided_by_keyword":
        round(ev.hybrid_share_keyword, 4), "tier_costs": dict(ev.tier_costs),
        "most_common_class": {"class": ev.most_common[0],
                              "accuracy": round(ev.most_common[1], 4)},
        "calibration": ev.calibration,
        "hybrid_threshold_chosen_on_dev": ev.hybrid_threshold_on_dev,
        "floor_chosen_on_dev": None if ev.floor is None else {
            "profile": ev.floor.profile, "relevance": ev.floor.relevance,
            "dev": {str(b): {src: {"accuracy": a, "relative_cost": c}
                             for src, (a, c) in by.items()}
                    for b, by in ev.floor.dev.items()}},
        "hybrid_dev_mean_apgr": {str(k): round(v, 4) for k, v in ev.hybrid_dev_apgr.items()},
        "classifier": {}, "classifier_proxy_rows": {}, "routing": {}, "quality": ev.quality_table,
        "pick_router": ev.pick_router, "stand_ins": ev.stand_ins,
        "pick": {src: {name: {"accuracy": round(f.accuracy, 4),
                              "relative_cost": round(f.relative_cost, 4),
                              "latency_seconds": round(f.latency_seconds, 3), "rows": f.rows}
                       for name, f in by.items()} for src, by in ev.pick.items()}}
    for key, metrics in (("classifier", ev.classifier),
                         ("classifier_proxy_rows", ev.classifier_proxy)):
        for name, m in metrics.items():
            out[key][name] = {"accuracy": round(m.accuracy, 4),
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
