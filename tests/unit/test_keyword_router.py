import pytest

from pickspin.core.routers import MAX_PROMPT_CHARS, KeywordRouter
from pickspin.core.settings import Keywords


@pytest.fixture
def router(settings):
    return KeywordRouter(settings.routing.keywords)


@pytest.mark.parametrize(("prompt", "expected"), [
    ("Define photosynthesis.", "low"),
    ("List the planets of the solar system", "low"),
    ("What is the capital of France?", "low"),
    ("Prove that the square root of 2 is irrational.", "high"),
    ("Derive the closed form of the Fibonacci numbers", "high"),
    ("Explain why the sky is blue, step by step", "high"),
    ("Write a short poem about autumn", "medium"),
])
def test_paper_keyword_rules(router, prompt, expected):
    assert router.classify(prompt).complexity == expected


def test_probabilities_are_a_distribution_with_a_decisive_top(router):
    result = router.classify("Prove it")
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.confidence > 0.8


def test_mixed_hits_are_not_decisive(router):
    result = router.classify("List the steps and prove each one")
    assert result.confidence < 0.7


def test_keywords_match_word_starts_only():
    router = KeywordRouter(Keywords(low=("sum",), high=("prove",)))
    assert router.classify("consummate skill").complexity == "medium"
    assert router.classify("Summarise this").complexity == "low"


def test_huge_prompts_are_truncated_not_refused(router):
    result = router.timed("define " + "x" * (MAX_PROMPT_CHARS * 2))
    assert result.truncated
    assert result.complexity == "low"
    assert result.elapsed_ms >= 0
