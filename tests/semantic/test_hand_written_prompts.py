"""Hand-written prompts none of the benchmarks contain, through the served router (the
chart's `routing`: its mode, the short-prompt rule and the committed model) and the real
`select` with the served profiles: easy requests stay on the small tier where a profile may
save, hard ones reach the large tier under quality and balanced, and quality and cost choose
differently on hard ones. The whole table is in README (issue 8)."""

from __future__ import annotations

import pytest

from pickspin.core.selection import select
from pickspin.semantic.registry import build_registry

EASY = ["Define the word photosynthesis", "What is the capital of France?",
        "Translate 'good morning' into Spanish", "Who is the author of Hamlet?",
        "What is 7 times 8?", "Spell the word necessary", "Name three primary colours",
        "Convert 5 kilometres to miles", "What is a synonym for happy?",
        "When did World War II end?"]
CHAT = ["hi", "Hello, how are you?", "Thanks!", "good morning", "hey there", "ok", "lol",
        "Hi, who are you?"]
HARD = ["Prove that there are infinitely many primes",
        "Prove that the square root of 2 is irrational",
        "Derive the quadratic formula step by step",
        "Implement Dijkstra's shortest path algorithm in Python and analyse its complexity",
        "Design a lock-free concurrent hash map and justify its correctness",
        "Derive the Black-Scholes equation from first principles",
        "Hi, can you prove that there are infinitely many primes?"]


@pytest.fixture(scope="module")
def served(settings):
    registry = build_registry(settings)
    assert registry.unavailable == {}, registry.unavailable
    return registry.get(settings.routing.mode.value)


def _pick(settings, c, profile: str) -> str:
    d = select(settings, {}, c.probabilities, profile=profile, complexity=c.complexity,
               success=c.success or None, settled=c.settled)
    return d.chosen.model


@pytest.mark.parametrize("prompt", EASY + CHAT)
def test_easy_requests_and_chit_chat_stay_on_the_small_tier(settings, served, prompt):
    c = served.timed(prompt)
    assert c.complexity == "low", c
    for profile in ("balanced", "cost", "speed"):
        model = _pick(settings, c, profile)
        assert settings.model(model).tier == "small", (profile, model, dict(c.success))


@pytest.mark.parametrize("prompt", HARD)
def test_hard_requests_reach_the_large_tier_and_quality_is_not_cost(settings, served, prompt):
    c = served.timed(prompt)
    assert c.complexity == "high", c
    for profile in ("quality", "balanced"):
        model = _pick(settings, c, profile)
        assert settings.model(model).tier == "large", (profile, model, dict(c.success))
    assert _pick(settings, c, "quality") != _pick(settings, c, "cost")
