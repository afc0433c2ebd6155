"""Routing-quality arithmetic on synthetic outcomes, where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from pickspin.training.evaluate import Point, confusion, random_mix, routing_quality


def test_confusion_rows_are_labels_columns_predictions():
    m = confusion(["low", "low", "high"], ["low", "high", "high"])
    assert m == [[1, 0, 1], [0, 0, 0], [0, 0, 1]]


def test_random_mix_is_the_upper_hull_through_the_tier_points():
    pts = [Point(0.25, 0.4), Point(0.5, 0.5), Point(1.0, 0.8)]  # medium lies under the hull
    assert random_mix(pts, 0.25) == pytest.approx(0.4)
    assert random_mix(pts, 1.0) == pytest.approx(0.8)
    assert random_mix(pts, 0.5) == pytest.approx(0.4 + 0.4 * (0.25 / 0.75))


def _synthetic(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)  # 0 low, 1 medium, 2 high
    correct = np.zeros((n, 3))
    for i, k in enumerate(label):
        correct[i, k:] = 1.0 if k < 2 or rng.random() < 0.5 else 0.0
    costs = np.tile([0.25, 0.5, 1.0], (n, 1))
    quality = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.5]])  # tier × class
    return label, correct, costs, quality


def test_a_perfect_classifier_beats_random_mix_and_reaches_large_accuracy_cheaply():
    label, correct, costs, quality = _synthetic()
    probs = np.eye(3)[label]
    q = routing_quality("perfect", probs, correct, costs, quality)
    assert q.apgr > q.random_mix_apgr
    assert q.cost_to_match_large is not None and q.cost_to_match_large < 0.8
    assert q.min_margin_over_random > 0
    assert q.oracle.accuracy == pytest.approx(correct.any(axis=1).mean())


def test_an_uninformative_classifier_does_not_beat_random_mix():
    label, correct, costs, quality = _synthetic()
    probs = np.full((len(label), 3), 1 / 3)
    q = routing_quality("flat", probs, correct, costs, quality)
    assert q.apgr <= q.random_mix_apgr + 1e-9


# ---- the hybrid threshold, chosen on dev -------------------------------------------------
def _threshold_rows(keyword_texts: dict[str, str]):
    """40 dev gsm8k rows (24 low, 10 medium, 6 high) whose semantic output is right on every
    row but the first ten low ones (called medium); each row's text carries the keywords
    given for its class."""
    from pickspin.semantic.heads import class_probabilities
    from pickspin.training.data import Example, Outcome, split_of
    from pickspin.training.outputs import RouterOutput

    labels = ["low"] * 24 + ["medium"] * 10 + ["high"] * 6
    outcomes = {"low": (True, True, True), "medium": (False, True, True),
                "high": (False, False, True)}
    keys = (f"gsm8k:{n}" for n in range(10_000) if split_of(f"gsm8k:{n}") == "dev")
    rows = [Example(key, "gsm8k", f"{keyword_texts[lab]} question {i}", lab,
                    "outcome:gsm8k", Outcome("gsm8k", outcomes[lab]))
            for (i, lab), key in zip(enumerate(labels), keys, strict=False)]
    said = {"low": [0.9, 0.9, 0.9], "medium": [0.1, 0.9, 0.9], "high": [0.1, 0.1, 0.9]}
    classes = ["medium" if i < 10 else lab for i, lab in enumerate(labels)]
    success = np.array([said[c] for c in classes])
    return rows, RouterOutput(class_probabilities(success), classes, success)


@pytest.mark.parametrize("texts, expected", [
    # the keywords name every row's class: the decisive ones mend the ten low rows the model
    # got wrong and every recall stays 1.0, so a threshold that lets them stand wins
    ({"low": "define", "medium": "tell me", "high": "prove"}, 0.8),
    # the keywords also call the six high rows low: accuracy still rises (+10 −6 rows), but
    # high recall falls to 0, so the threshold that never lets a keyword verdict stand wins
    ({"low": "define", "medium": "tell me", "high": "define"}, 1.0),
])
def test_the_hybrid_threshold_keeps_every_class_recall(texts, expected):
    from pickspin.core.routers import KeywordRouter
    from pickspin.core.settings import Keywords
    from pickspin.training.offline import choose_threshold

    rows, sem = _threshold_rows(texts)
    keyword = KeywordRouter(Keywords(low=("define",), high=("prove",)))
    costs = {"small": 0.001, "medium": 0.01, "large": 0.1}
    chosen, apgr = choose_threshold(rows, keyword, sem, rows, costs)
    assert chosen == expected
    assert len(set(apgr.values())) == 1  # success estimates decide routing, not the class
