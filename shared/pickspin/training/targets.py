"""Training targets for the per-tier success heads, from real outcomes.

Hard target: did the tier's stand-in answer this prompt correctly (0/1)? One outcome per
tier is noisy (a multiple-choice guess is right one time in four to ten), so where a source
labels many models per item (MMLU-Pro: 29, RouterBench: 11) the *other* models' answers to
the item say how hard it is, and for whom: per tier, a logistic regression of the stand-in's
outcome on the other models' outcomes (fitted on training rows, L2-regularised) gives a soft
target P(stand-in correct | how the others did) — item response theory with the other models
as the probe set. The tier stand-ins, and every model that represents a configured model in
`replay`, are never features, so no figure is later measured on a model that helped define
the label (cross-fitting).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pickspin.training.data import Example
from pickspin.training.labels import STAND_IN_OVERRIDES, TIER_MAPS, is_correct, stand_in

# Sources whose rows carry enough other models for an item-difficulty estimate.
MIN_OTHER_MODELS = 5


def excluded_models(source: str) -> set[str]:
    """Models that never enter a difficulty estimate: tier stand-ins and override stand-ins."""
    out = set(TIER_MAPS[source].models)
    for overrides in STAND_IN_OVERRIDES.values():
        who = overrides.get(source)
        if who:
            out.add(who)
    return out


def _features(ex: Example, models: Sequence[str]) -> np.ndarray:
    """Other models' outcomes (1/0; 0.5 where unlabelled) plus a constant."""
    scores = ex.outcome.scores if ex.outcome else {}
    vals = [is_correct(scores.get(m)) for m in models]
    return np.array([0.5 if v is None else float(v) for v in vals] + [1.0])


def hard_targets(rows: Sequence[Example]) -> np.ndarray:
    """n × 3 tier outcomes (0/1); rows without outcomes must not be passed."""
    return np.array([[float(c) for c in ex.outcome.correct] for ex in rows  # type: ignore[union-attr]
                     ], dtype=np.float64).reshape(len(rows), 3)


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights of an L2-regularised logistic regression (Newton; the constant is the last
    column and is not penalised)."""
    w = np.zeros(x.shape[1])
    pen = np.full(x.shape[1], l2)
    pen[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + pen * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass(frozen=True)
class SoftMap:
    """For one source: the probe models and, per tier, the regression weights."""

    models: tuple[str, ...]
    weights: tuple[np.ndarray, ...]

    def predict(self, ex: Example) -> np.ndarray:
        f = _features(ex, self.models)
        return np.array([1 / (1 + np.exp(-(f @ w))) for w in self.weights])


def fit_soft_maps(train: Sequence[Example]) -> dict[str, SoftMap]:
    """Per source with at least MIN_OTHER_MODELS probe models: a `SoftMap` from train rows."""
    maps: dict[str, SoftMap] = {}
    for source in TIER_MAPS:
        rows = [e for e in train if e.outcome is not None and e.outcome.source == source]
        skip = excluded_models(source)
        seen: dict[str, int] = {}
        for e in rows:
            for m, v in e.outcome.scores.items():  # type: ignore[union-attr]
                if m not in skip and v is not None:
                    seen[m] = seen.get(m, 0) + 1
        models = tuple(sorted(m for m, n in seen.items() if n >= 0.9 * len(rows)))
        if len(models) < MIN_OTHER_MODELS or len(rows) < 50:
            continue
        x = np.stack([_features(e, models) for e in rows])
        y = hard_targets(rows)
        maps[source] = SoftMap(models, tuple(_logistic(x, y[:, t]) for t in range(3)))
    return maps


def soft_targets(rows: Sequence[Example], maps: dict[str, SoftMap],
                 mix: float = 1.0) -> np.ndarray:
    """n × 3 targets: mix·soft + (1 − mix)·hard where a source has a map, else hard."""
    y = hard_targets(rows)
    for i, ex in enumerate(rows):
        src = ex.outcome.source if ex.outcome else ""
        if src in maps:
            y[i] = mix * maps[src].predict(ex) + (1 - mix) * y[i]
    return y


def model_targets(rows: Sequence[Example], models: Sequence[tuple[str, str]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """n × len(models) outcomes of each (name, tier) model's own stand-in per row
    (`labels.stand_in`), and the mask: 0 where that source has no stand-in for the model or
    the stand-in has no outcome for the row."""
    y = np.zeros((len(rows), len(models)))
    mask = np.zeros_like(y)
    for i, ex in enumerate(rows):
        if ex.outcome is None:
            continue
        for j, (name, tier) in enumerate(models):
            who = stand_in(name, tier, ex.outcome.source)
            ok = is_correct(ex.outcome.scores.get(who)) if who else None
            if ok is not None:
                y[i, j], mask[i, j] = float(ok), 1.0
    return y, mask
