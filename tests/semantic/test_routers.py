"""Keyword, semantic and hybrid through the registry: valid classifications, hostile prompts,
and a missing or corrupt model recorded as unavailable while keyword keeps serving."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from pickspin.core.routers import MAX_PROMPT_CHARS, Classification, Router
from pickspin.core.settings import COMPLEXITY_CLASSES, Settings
from pickspin.semantic.hybrid import HybridRouter
from pickspin.semantic.registry import build_registry
from pickspin.semantic.runtime import DEFAULT_MODEL_DIR, MODEL_FILE, SemanticRouter

MODES = ("keyword", "semantic", "hybrid")
HOSTILE = {
    "empty": "",
    "huge": "Prove the following lemma carefully. " * 5000,  # > 100k characters
    "binary": bytes(range(256)).decode("latin-1") * 40 + "\x00\x00\ufffe",
    "non_utf8": (b"\xff\xfe\xfa caf\xe9 \xc3\x28 na\xefve " * 50).decode("utf-8", "replace"),
}


def _valid(result: Classification, router: str) -> None:
    assert result.complexity in COMPLEXITY_CLASSES
    assert set(result.probabilities) == set(COMPLEXITY_CLASSES)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
    if not result.success:  # with per-tier success estimates the class rule decides
        assert result.complexity == max(result.probabilities,
                                        key=result.probabilities.__getitem__)
    assert result.router == router
    assert result.elapsed_ms >= 0


@pytest.fixture(scope="module")
def registry(settings: Settings, semantic_router: SemanticRouter):
    reg = build_registry(settings)
    assert reg.unavailable == {}, reg.unavailable
    return reg


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_returns_a_valid_classification(registry, mode):
    for prompt in ("What is the capital of France?",
                   "Prove that every bounded monotone sequence of reals converges.",
                   "The following is a multiple choice question about law.\n\nA. yes\nB. no"):
        _valid(registry.get(mode).timed(prompt), mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_prompts_get_a_valid_possibly_truncated_classification(registry, mode, kind):
    prompt = HOSTILE[kind]
    result = registry.get(mode).timed(prompt)
    _valid(result, mode)
    if len(prompt) > MAX_PROMPT_CHARS:
        assert result.truncated


def test_semantic_marks_prompts_longer_than_its_token_budget_as_truncated(semantic_router):
    long = "word " * (semantic_router.config.max_length * 3)
    assert semantic_router.classify(long).truncated
    assert not semantic_router.classify("short question").truncated


def _settings_with_model(settings: Settings, folder) -> Settings:
    routing = settings.routing.model_copy(update={"semantic_model": str(folder)})
    return settings.model_copy(update={"routing": routing})


def test_missing_model_is_recorded_as_unavailable_and_keyword_still_serves(settings, tmp_path):
    reg = build_registry(_settings_with_model(settings, tmp_path / "no-such-model"))
    assert reg.available == ["keyword"]
    assert "lacks model.onnx" in reg.unavailable["semantic"]
    assert "needs the semantic router" in reg.unavailable["hybrid"]
    with pytest.raises(LookupError, match="unavailable"):
        reg.get("semantic")
    _valid(reg.get("keyword").timed("Prove it"), "keyword")


def test_corrupt_model_is_recorded_as_unavailable_and_keyword_still_serves(settings, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    (folder / MODEL_FILE).write_bytes(b"\x00not an onnx graph" * 100)
    reg = build_registry(_settings_with_model(settings, folder))
    assert "cannot load ONNX model" in reg.unavailable["semantic"]
    assert "hybrid" in reg.unavailable
    _valid(reg.get("keyword").timed("Define entropy"), "keyword")


@pytest.mark.parametrize("load", [
    "from pickspin.semantic.runtime import SemanticRouter, DEFAULT_MODEL_DIR;"
    "SemanticRouter.load(DEFAULT_MODEL_DIR).classify('hello')",
    "from pickspin.semantic.success import SuccessRouter; from pickspin.training.build import "
    "DEFAULT_OUT; SuccessRouter.load(DEFAULT_OUT).classify('hello')"])
def test_serving_imports_neither_torch_nor_transformers(load):
    code = (f"import sys; {load};"
            "print(sorted(m for m in ('torch', 'transformers', 'optimum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _Fixed(Router):
    def __init__(self, name: str, probs: dict[str, float]) -> None:
        self.name, self._probs, self.calls = name, probs, 0

    def classify(self, prompt: str) -> Classification:
        self.calls += 1
        return Classification.from_probabilities(self._probs, self.name)


def test_hybrid_keeps_a_decisive_keyword_verdict_and_asks_the_model_otherwise():
    decisive = _Fixed("keyword", {"low": 0.85, "medium": 0.12, "high": 0.03})
    model = _Fixed("semantic", {"low": 0.1, "medium": 0.2, "high": 0.7})
    result = HybridRouter(decisive, model, threshold=0.7).classify("x")
    assert (result.complexity, result.router, model.calls) == ("low", "hybrid", 0)
    unsure = _Fixed("keyword", {"low": 0.2, "medium": 0.6, "high": 0.2})
    result = HybridRouter(unsure, model, threshold=0.7).classify("x")
    assert (result.complexity, result.router, model.calls) == ("high", "hybrid", 1)
    assert result.probabilities["high"] == pytest.approx(0.7)


def test_hybrid_with_the_encoder_router_keeps_its_success_where_keywords_set_the_class(
        settings):
    from pickspin.semantic.success import SuccessRouter
    from pickspin.training.build import DEFAULT_OUT

    model = SuccessRouter.load(DEFAULT_OUT)
    keyword = build_registry(settings).get("keyword")
    hybrid = HybridRouter(keyword, model, threshold=0.7)
    prompt = "Prove that the square root of 2 is irrational."
    result = hybrid.timed(prompt)
    assert result.complexity == "high"  # the decisive keyword verdict
    assert result.success == model.classify(prompt).success  # R̂ stays the model's


def test_hybrid_marks_a_class_its_short_prompt_rule_settled_and_keeps_the_models_success(
        settings):
    """A settled high class keeps the model's R̂ (selection picks among the large models on
    it); a settled low one is scored on quality, so the encoder is not asked at all."""
    from pickspin.core.routers import KeywordRouter
    from pickspin.semantic.success import SuccessRouter
    from pickspin.training.build import DEFAULT_OUT

    model = SuccessRouter.load(DEFAULT_OUT)
    keyword = KeywordRouter(settings.routing.keywords)
    hybrid = HybridRouter(keyword, model, threshold=1.0, settle_words=12)
    hi = hybrid.timed("hi")
    assert (hi.complexity, hi.settled) == ("low", True)
    assert hi.success == {}  # no encoder run for it
    prove = hybrid.timed("Prove that there are infinitely many primes")
    assert (prove.complexity, prove.settled) == ("high", True)
    assert prove.success == model.classify("Prove that there are infinitely many primes").success
    long = "Write a function to find the shared elements from the given two lists."
    assert not hybrid.timed(long).settled
    assert hybrid.timed(long).complexity == model.classify(long).complexity
    off = HybridRouter(keyword, model, threshold=1.0)  # settle_words 0: the rule is off
    assert not off.timed("hi").settled
