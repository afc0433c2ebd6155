"""Label rules, the hash split, the quality table and its in-place write into values.yaml."""

from __future__ import annotations

import shutil

import pytest

from pickspin.core.settings import Settings
from pickspin.training.data import Example, Outcome, split_of
from pickspin.training.labels import TIER_MAPS, label_from_outcomes, proxy_label, stand_in
from pickspin.training.quality import estimate_quality, grouped_quality, write_quality
from tests.conftest import VALUES


def test_label_is_the_cheapest_tier_that_answers_and_high_when_none_does():
    assert label_from_outcomes([True, True, True]) == "low"
    assert label_from_outcomes([False, True, False]) == "medium"
    assert label_from_outcomes([False, False, True]) == "high"
    assert label_from_outcomes([False, False, False]) == "high"


def test_proxies_follow_the_documented_rules():
    assert [proxy_label("math", {"level": n}) for n in range(1, 6)] == \
        ["low", "low", "medium", "high", "high"]
    assert proxy_label("math", {"level": None}) is None
    assert proxy_label("arc", {"difficulty": "easy"}) == "low"
    assert proxy_label("arc", {"difficulty": "challenge"}) == "medium"
    assert proxy_label("humaneval", {}) == "high"
    assert proxy_label("unknown", {}) is None


def test_stand_ins_follow_the_tier_map_with_overrides():
    assert stand_in("llama-3-70b", "medium", "mmlu_pro") == TIER_MAPS["mmlu_pro"].medium
    assert stand_in("deepseek-r1", "large", "mmlu_pro") == "gemini-1.5-pro-002"
    assert stand_in("qwen-3-235b", "large", "mmlu_pro") == "gemini-1.5-flash-002"
    assert stand_in("gemma-3-270m", "small", "mmlu_pro") == "Llama-2-7b-hf"
    assert stand_in("gemma-3-270m", "small", "routerbench") is None


def test_split_is_deterministic_and_roughly_proportioned():
    keys = [f"bench:{i}" for i in range(5000)]
    first = [split_of(k) for k in keys]
    assert first == [split_of(k) for k in keys]
    share = {s: first.count(s) / len(keys) for s in ("train", "dev", "test")}
    assert share["test"] == pytest.approx(0.2, abs=0.03)
    assert share["dev"] == pytest.approx(0.1, abs=0.03)


def test_grouped_quality_is_the_share_correct_per_label():
    rows = [("low", True), ("low", False), ("medium", True), ("high", False)]
    assert grouped_quality(rows) == {"low": 0.5, "medium": 1.0, "high": 0.0}


def _example(key: str, scores: dict[str, float]) -> Example:
    m = TIER_MAPS["mmlu_pro"]
    correct = tuple(scores[x] >= 0.5 for x in m.models)
    return Example(key, "mmlu_pro", "q", label_from_outcomes(correct), "outcome:mmlu_pro",
                   Outcome("mmlu_pro", correct, scores))  # type: ignore[arg-type]


def test_quality_is_never_estimated_on_test_rows(settings: Settings):
    keys = [f"k{i}" for i in range(400)]
    scores = {m: 1.0 for m in [*TIER_MAPS["mmlu_pro"].models, "gemini-1.5-flash-002",
                               "Llama-2-7b-hf"]}
    test_key = next(k for k in keys if split_of(k) == "test")
    with pytest.raises(ValueError, match="evaluation"):
        estimate_quality(settings, [_example(test_key, scores)])
    train_keys = [k for k in keys if split_of(k) == "train"]
    medium = {**scores, TIER_MAPS["mmlu_pro"].small: 0.0}  # only the 8B model fails
    rows = [_example(train_keys[0], scores), _example(train_keys[1], medium)]
    table = estimate_quality(settings, rows)
    assert set(table) == {m.name for m in settings.models}
    assert table["gemma-3-27b"] == {"low": 1.0, "medium": 0.0, "high": 0.0}
    assert table["llama-3-70b"] == {"low": 1.0, "medium": 1.0, "high": 0.0}


def test_write_quality_edits_only_quality_lines_and_keeps_comments(tmp_path):
    copy = tmp_path / "values.yaml"
    shutil.copy(VALUES, copy)
    before = copy.read_text().splitlines()
    table = {"llama-3-70b": {"low": 0.91, "medium": 0.5, "high": 0.123}}
    assert write_quality(copy, table) == ["llama-3-70b"]
    after = copy.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1].strip() == "quality: {low: 0.91, medium: 0.50, high: 0.12}"
    assert Settings.load(copy).model("llama-3-70b").quality["high"] == 0.12
    assert sum(line.lstrip().startswith("#") for line in after) == \
        sum(line.lstrip().startswith("#") for line in before)
