"""The cold-start plan is pure: the gateway and the trace simulator execute the same one."""

from pickspin.core.coldplan import START_SLACK_SECONDS, cold_plan, last_hold_seconds
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


def test_with_only_a_lower_tier_warm_the_request_is_held_then_the_lower_tier_answers(
        settings):
    plan = cold_plan(settings, "balanced", LARGE_COLD, [SMALL_WARM])
    assert plan.action == "hold" and plan.now[0] == LARGE_COLD
    assert plan.limit == settings.profile("balanced").scaling.max_cold_wait_seconds
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


def test_with_nothing_warm_the_request_waits_for_the_whole_start_instead_of_failing(settings):
    """A cold service is not capacity, but with nothing warm the start under way is the only
    way to answer: both holds last as long as it takes (`coldStartSeconds` + slack), not
    the profile's `maxColdWaitSeconds` (600 s vs 60 s here: two holds would fail)."""
    start = settings.service(LARGE_COLD.service).cold_start_seconds
    plan = cold_plan(settings, "balanced", LARGE_COLD, [])
    assert plan.action == "hold"
    assert plan.limit == plan.last_hold == start + START_SLACK_SECONDS
    assert last_hold_seconds(settings, "balanced", LARGE_COLD.service) == plan.last_hold
    # a service that starts within the wait keeps the profile's bound for the first hold
    quick = _c("gemma-3-270m-llamacpp", "gemma-3-270m", False)
    assert cold_plan(settings, "balanced", quick, []).limit == \
        settings.profile("balanced").scaling.max_cold_wait_seconds


def test_in_a_burst_a_warm_service_takes_the_request_rather_than_a_cold_one(settings):
    """The burst case: the warm large replica is full, so the selector's best is a cold
    backend (cold start 600 s). The request goes to a warm service with a free slot now
    (from `overflow`, a lower tier), else queues at the full one of the tier, while the cold
    one wakes — under `hold` too, whose 120 s could only time out."""
    full = _c("deepseek-r1-trtllm", "deepseek-r1", True).model_copy(update={"full": True})
    medium_free = _c("llama-3-70b-trtllm", "llama-3-70b", True)
    for profile in ("balanced", "quality"):
        plan = cold_plan(settings, profile, LARGE_COLD, [], overflow=[medium_free, full])
        assert plan.action == "substitute"
        assert plan.now == (medium_free, full, LARGE_COLD)
        only_full = cold_plan(settings, profile, LARGE_COLD, [], overflow=[full])
        assert only_full.action == "substitute" and only_full.now == (full, LARGE_COLD)


def test_the_hold_profile_holds_when_the_start_fits_its_wait(settings):
    scaling = settings.profile("quality").scaling
    assert scaling.cold_start == "hold"
    quick = _c("gemma-3-27b-tgi", "gemma-3-27b", False)
    assert settings.service(quick.service).cold_start_seconds <= scaling.max_cold_wait_seconds
    plan = cold_plan(settings, "quality", quick, [LARGE_WARM])
    assert plan.action == "hold" and plan.after_timeout == (LARGE_WARM, quick)
    # a start longer than the wait: the warm same-or-higher tier answers now instead
    slow = cold_plan(settings, "quality", LARGE_COLD, [LARGE_WARM])
    assert slow.action == "substitute" and slow.now == (LARGE_WARM, LARGE_COLD)
