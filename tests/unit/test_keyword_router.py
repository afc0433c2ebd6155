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


# ---- the hybrid's short-prompt rule (`routing.settleWords`) ----------------------------------
@pytest.mark.parametrize(("prompt", "expected"), [
    ("Define the word photosynthesis", "low"),
    ("What is the capital of France?", "low"),
    ("Translate 'good morning' into Spanish", "low"),
    ("hi", "low"),
    ("Hello, how are you?", "low"),
    ("Thanks!", "low"),
    ("hey there", "low"),  # a greeting and small talk, no keyword
    ("lol", "low"),
    ("Hi, who are you?", "low"),
    ("OK, define entropy", "low"),
    ("Please define entropy", "low"),
    ("Prove that there are infinitely many primes", "high"),
    ("Hi, can you prove that there are infinitely many primes?", "high"),
    ("Derive the quadratic formula step by step", "high"),
    # left to the model: the keyword is further in, mixed sides, no keyword, too long
    ("Write a function to sort a list", None),
    ("What is the time complexity of quicksort?", None),
    ("Is a tomato a fruit?", None),
    ("Define " + "very " * 20 + "long words", None),
    ("history of Rome", None),  # "hi" is a whole word only
    ("Yes or no: is P = NP?", None),  # more than a few words of small talk
    ("", None),
])
def test_short_prompts_settle_only_when_they_open_with_one_side(settings, prompt, expected):
    router = KeywordRouter(settings.routing.keywords)
    assert router.settles(prompt, 12) == expected


def test_the_short_prompt_rule_is_off_at_zero_words(settings):
    assert KeywordRouter(settings.routing.keywords).settles("hi", 0) is None


def test_greetings_are_no_low_keywords_of_the_plain_rules(settings):
    # the chat words count only in the short-prompt rule: "his"/"history" stay unmatched
    router = KeywordRouter(settings.routing.keywords)
    assert router.hits("hi, his history") == (0, 0)
