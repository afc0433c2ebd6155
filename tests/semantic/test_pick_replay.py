"""The whole Pick replayed: deterministic for a fixed seed, every configuration present, and
a set where a configured model has no stand-in replays in full."""

from __future__ import annotations

import random

from pickspin.training.data import Example, Outcome
from pickspin.training.labels import STAND_IN_OVERRIDES, TIER_MAPS, label_from_outcomes
from pickspin.training.pick_replay import RouterRow, replay_pick, stand_ins, table3


def _rows(source: str, n: int, seed: int) -> tuple[list[Example], list[RouterRow]]:
    rng = random.Random(seed)
    models = set(TIER_MAPS[source].models)
    models |= {o[source] for o in STAND_IN_OVERRIDES.values() if o.get(source)}
    rows, said = [], []
    for i in range(n):
        hard = rng.random()
        scores = {m: float(rng.random() > hard * (1.2 - 0.2 * k))
                  for k, m in enumerate(sorted(models))}
        correct = tuple(bool(scores[m]) for m in TIER_MAPS[source].models)
        rows.append(Example(f"{source}:{i}", source, f"q{i}", label_from_outcomes(correct),
                            f"outcome:{source}", Outcome(source, correct, scores)))  # type: ignore[arg-type]
        p = [1 - hard, 1 - hard * 0.7, 1 - hard * 0.5]
        said.append(RouterRow("high" if hard > 0.6 else "low" if hard < 0.3 else "medium",
                              {"low": 0.4, "medium": 0.3, "high": 0.3},
                              {"small": p[0], "medium": p[1], "large": p[2]}))
    return rows, said


def test_replay_is_deterministic_for_a_fixed_seed(settings):
    rows, said = _rows("mmlu_pro", 60, 1)
    a = replay_pick(settings, rows, said, seed=7)
    b = replay_pick(settings, rows, said, seed=7)
    assert a == b
    names = set(a["mmlu_pro"])
    for profile in settings.profiles:
        for strategy in ("multi-objective", "random", "latency"):
            assert f"{profile}/{strategy}" in names
    assert {"random-assignment", "always-small", "always-medium", "always-large",
            "oracle"} <= names
    assert a["mmlu_pro"]["always-large"].relative_cost == 1.0
    assert a["mmlu_pro"]["oracle"].accuracy >= max(f.accuracy for f in a["mmlu_pro"].values())
    assert len(table3(a, "balanced")) == 2 + 8


def test_a_set_where_a_model_has_no_stand_in_is_replayed_in_full_with_progress(settings):
    rows, said = _rows("gsm8k", 40, 2)
    assert stand_ins(settings)["gsm8k"]["gemma-3-270m"] is None
    progress: list[str] = []
    out = replay_pick(settings, rows, said, seed=3, progress=progress.append)
    assert out["gsm8k"]["balanced/multi-objective"].rows == 40
    assert progress and progress[-1].endswith("40/40 rows")


def test_random_assignment_is_the_expectation_over_the_models_with_an_outcome(settings):
    rows, said = _rows("gsm8k", 50, 4)
    who = stand_ins(settings)["gsm8k"]
    usable = [m for m, s in who.items() if s is not None]
    expected = sum(r.outcome.scores[who[m]] >= 0.5 for r in rows for m in usable) \
        / (len(rows) * len(usable))
    for seed in (1, 2):
        out = replay_pick(settings, rows, said, seed=seed)["gsm8k"]["random-assignment"]
        assert abs(out.accuracy - expected) < 1e-9
        assert out.rows == 50


def test_the_balanced_floor_is_the_most_accurate_bound_within_the_dev_cost_budget(settings):
    from pickspin.training.pick_replay import FLOOR_BUDGET, FLOOR_GRID, choose_floor

    rows, said = _rows("mmlu_pro", 80, 5)
    choice = choose_floor(settings, rows, said)
    assert set(choice.dev) == set(FLOOR_GRID) and choice.relevance in FLOOR_GRID
    within = {b: by for b, by in choice.dev.items()
              if max(c for _, c in by.values()) <= FLOOR_BUDGET["balanced"]}
    if within:
        best = max(sum(a for a, _ in by.values()) for by in within.values())
        assert sum(a for a, _ in choice.dev[choice.relevance].values()) == best
    else:
        assert choice.relevance == FLOOR_GRID[0]
    assert choose_floor(settings, rows, said) == choice


def test_router_rows_carry_the_models_own_success_beside_the_tiers():
    import numpy as np

    from pickspin.training.pick_replay import router_rows

    names = ("small", "medium", "large", "qwen-3-235b")
    (row,) = router_rows(np.array([[0.2, 0.3, 0.5]]), ["high"],
                         np.array([[0.1, 0.4, 0.8, 0.6]]), names)
    assert row.success == {"small": 0.1, "medium": 0.4, "large": 0.8, "qwen-3-235b": 0.6}


def test_replay_applies_the_settled_floor_as_the_gateway_does(settings):
    # every row a low prompt whose small-tier R̂ is 0.28 below the large one's: balanced's
    # bound sends it up unless the short-prompt rule settled it (then it may stay small)
    rows, _ = _rows("gsm8k", 40, 3)
    success = {"small": 0.50, "medium": 0.60, "large": 0.78}
    low = {"low": 0.85, "medium": 0.12, "high": 0.03}
    plain = [RouterRow("low", low, success) for _ in rows]
    settled = [RouterRow("low", low, success, settled=True) for _ in rows]
    small = replay_pick(settings, rows, settled, profiles=("balanced",))["gsm8k"]
    up = replay_pick(settings, rows, plain, profiles=("balanced",))["gsm8k"]
    assert small["balanced/multi-objective"].relative_cost == \
        small["always-small"].relative_cost
    assert up["balanced/multi-objective"].relative_cost > small["always-small"].relative_cost


def test_the_hybrids_output_marks_the_rows_the_short_prompt_rule_settled(settings):
    from dataclasses import replace

    import numpy as np

    from pickspin.core.routers import KeywordRouter
    from pickspin.training.outputs import RouterOutput, hybrid_of, settled_classes

    rows, _ = _rows("gsm8k", 3, 1)
    rows = [replace(r, text=t) for r, t in
            zip(rows, ["hi", "Prove that 2 is prime", "Write a function to sort a list"],
                strict=True)]
    keyword = KeywordRouter(settings.routing.keywords)
    sem = RouterOutput(np.full((3, 3), 1 / 3), ["medium"] * 3, np.full((3, 3), 0.5))
    out = hybrid_of([keyword.classify(r.text) for r in rows], sem, 1.0,
                    settled_classes(rows, keyword, 12))
    assert out.classes == ["low", "high", "medium"]
    assert out.settled == (True, True, False)
    assert (out.success == sem.success).all()  # R̂ stays the model's
    assert out.take([1]).settled == (True,)
