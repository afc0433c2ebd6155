"""The cold-start plan is pure: the gateway and the trace simulator execute the same one."""

from pickspin.core.coldplan import cold_plan
from pickspin.core.events import Candidate, ScoreBreakdown

BREAKDOWN = ScoreBreakdown(relevance=0.5, latency=0.5, cost=0.5, latency_seconds=3.0,
                           cost_per_query=0.001, score=0.5)


def _c(service: str, model: str, warm: bool) -> Candidate:
    return Candidate(service=service, model=model, backend=service.rsplit("-", 1)[1],
                     endpoint="", breakdown=BREAKDOWN, warm=warm)


LARGE_COLD = _c("deepseek-r1-vllm", "deepseek-r1", False)
LARGE_WARM = _c("qwen-3-235b-vllm", "qwen-3-235b", True)
SMALL_WARM = _c("gemma-3-27b-vllm", "gemma-3-27b", True)


def test_a_warm_choice_is_served_as_chosen(settings):
    plan = cold_plan(settings, "balanced", LARGE_WARM, [SMALL_WARM])
    assert plan.action == "none" and plan.now == (LARGE_WARM, SMALL_WARM)


def test_substitute_serves_a_warm_same_or_higher_tier_first_and_never_a_lower_one(settings):
    plan = cold_plan(settings, "balanced", LARGE_COLD, [SMALL_WARM, LARGE_WARM])
    assert plan.action == "substitute"
    assert plan.now == (LARGE_WARM, LARGE_COLD, SMALL_WARM)
    assert plan.limit == settings.profile("balanced").scaling.max_cold_wait_seconds


def test_without_a_qualifying_substitute_the_request_is_held(settings):
    plan = cold_plan(settings, "balanced", LARGE_COLD, [SMALL_WARM])
    assert plan.action == "hold" and plan.now[0] == LARGE_COLD
    # after a timed-out hold the lower tier answers rather than nothing
    assert plan.after_timeout == (SMALL_WARM, LARGE_COLD)


def test_after_a_timed_out_hold_with_nothing_warm_the_chosen_stays_first(settings):
    """The gateway holds once more for the first of `after_timeout` when no candidate
    answers: that must be the service already starting, not a cold runner-up it would wake."""
    other_cold = _c("deepseek-r1-tgi", "deepseek-r1", False)
    plan = cold_plan(settings, "balanced", LARGE_COLD, [other_cold])
    assert plan.action == "hold" and plan.after_timeout == (LARGE_COLD, other_cold)
    with_warm = cold_plan(settings, "balanced", LARGE_COLD, [other_cold, SMALL_WARM])
    assert with_warm.after_timeout == (SMALL_WARM, LARGE_COLD, other_cold)


def test_the_hold_profile_holds_even_with_a_warm_substitute(settings):
    assert settings.profile("quality").scaling.cold_start == "hold"
    plan = cold_plan(settings, "quality", LARGE_COLD, [LARGE_WARM])
    assert plan.action == "hold" and plan.after_timeout == (LARGE_WARM, LARGE_COLD)
