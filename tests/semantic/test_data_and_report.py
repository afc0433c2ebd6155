"""On the real benchmark folder: labels, the split, and the report written from held-out rows."""

from __future__ import annotations

import json

import pytest

from pickspin.training.data import by_split, load_examples
from pickspin.training.labels import TIER_MAPS, label_from_outcomes
from pickspin.training.offline import evaluate
from pickspin.training.report import CONFUSION_PNG, ROUTING_PNG, write_report


@pytest.fixture(scope="module")
def examples(data_dir):
    return load_examples(data_dir)


def test_every_source_with_three_tiers_gives_labelled_rows(examples):
    sources = {e.outcome.source for e in examples if e.outcome}
    assert sources == set(TIER_MAPS)
    for e in examples:
        assert e.label in ("low", "medium", "high")
        if e.outcome:
            assert e.label == label_from_outcomes(e.outcome.correct)


def test_no_prompt_sits_in_two_splits(examples):
    keys = [e.key for e in examples]
    assert len(keys) == len(set(keys))
    splits = by_split(examples)
    assert all(splits[s] for s in ("train", "dev", "test"))
    mmlu_test = [e for e in splits["test"] if e.benchmark == "mmlu_pro"]
    assert len(mmlu_test) > 1500


def test_report_on_a_subset_writes_markdown_png_and_json(examples, settings, semantic_router,
                                                         tmp_path):
    subset = [e for e in examples if e.split in ("dev", "test") and e.outcome][::6]
    ev = evaluate(settings, subset, semantic_router, progress=lambda _m: None)
    md = write_report(ev, tmp_path)
    text = md.read_text()
    assert "APGR" in text and "keyword" in text and "hybrid" in text
    for png in (CONFUSION_PNG, ROUTING_PNG):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "routing-report.json").read_text())
    assert set(data["routing"]) <= set(TIER_MAPS)
    for by_router in data["routing"].values():
        for q in by_router.values():
            assert 0 <= q["always_small"] <= q["oracle"][1] <= 1
    assert set(data["quality"]) == {m.name for m in settings.models}
