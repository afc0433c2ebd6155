"""The selector's memo of decisions: the same answer as `select`, reused only while nothing it
depends on has changed (snapshot, settings, scheduled windows), and never for the random
strategy."""

from __future__ import annotations

import pytest

from pickspin.core.decisionmemo import DecisionMemo
from pickspin.core.errors import InvalidRequest
from pickspin.core.events import ServiceStats
from pickspin.core.selection import select

LOW = {"low": 1.0, "medium": 0.0, "high": 0.0}
HIGH = {"low": 0.0, "medium": 0.0, "high": 1.0}
NOON, MIDNIGHT = 12 * 3600.0, 0.0  # balanced's deepseek-r1 window is 07:00-21:00 UTC


def _stats(settings, down: tuple[str, ...] = ()) -> dict[str, ServiceStats]:
    return {s.name: ServiceStats(healthy=s.name not in down) for s in settings.services}


def test_a_repeated_request_on_the_same_snapshot_gets_the_same_decision_without_scoring(
        settings):
    memo, stats = DecisionMemo(), _stats(settings)
    first = memo.select(settings, stats, HIGH, complexity="high", time_of_day=NOON)
    again = memo.select(settings, stats, HIGH, complexity="high", time_of_day=NOON)
    assert again is first and (memo.hits, memo.misses) == (1, 1)
    assert first == select(settings, stats, HIGH, complexity="high", time_of_day=NOON)


def test_different_inputs_are_decided_apart(settings):
    memo, stats = DecisionMemo(), _stats(settings)
    for probs, complexity in ((LOW, "low"), (HIGH, "high")):
        for profile in ("quality", "cost"):
            got = memo.select(settings, stats, probs, complexity=complexity, profile=profile)
            assert got == select(settings, stats, probs, complexity=complexity,
                                 profile=profile)
    assert memo.hits == 0 and memo.misses == 4


def test_a_new_snapshot_is_decided_afresh(settings):
    memo = DecisionMemo()
    first = memo.select(settings, _stats(settings), HIGH, complexity="high", profile="quality")
    down = _stats(settings, (first.chosen.service,))
    second = memo.select(settings, down, HIGH, complexity="high", profile="quality")
    assert second.chosen.service != first.chosen.service
    assert second == select(settings, down, HIGH, complexity="high", profile="quality")


def test_a_scheduled_window_opening_or_closing_is_decided_afresh(settings):
    memo, stats = DecisionMemo(), _stats(settings)
    for when in (NOON, MIDNIGHT, NOON + 60):
        got = memo.select(settings, stats, HIGH, complexity="high", profile="balanced",
                          time_of_day=when)
        assert got == select(settings, stats, HIGH, complexity="high", profile="balanced",
                             time_of_day=when)
    assert (memo.hits, memo.misses) == (1, 2)  # noon and a minute later: one window


def test_the_random_strategy_is_never_remembered(settings):
    memo, stats = DecisionMemo(), _stats(settings)
    for _ in range(3):
        memo.select(settings, stats, HIGH, complexity="high", strategy="random")
    assert memo.hits == memo.misses == 0


def test_it_refuses_what_select_refuses(settings):
    with pytest.raises(InvalidRequest):
        DecisionMemo().select(settings, _stats(settings), HIGH, profile="fastest")


def test_it_keeps_at_most_size_decisions(settings):
    memo, stats = DecisionMemo(size=2), _stats(settings)
    for profile in ("quality", "cost", "speed"):
        memo.select(settings, stats, HIGH, complexity="high", profile=profile)
    memo.select(settings, stats, HIGH, complexity="high", profile="quality")
    assert memo.misses == 4  # quality was the least recently used, and went
