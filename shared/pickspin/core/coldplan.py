"""What Spin does when the chosen service is cold, as a pure function of the selector's
decision and the profile: hold the request for it, or serve a warm service now and wake it.
The gateway executes the plan with real waits (`gateway.app.Gateway._spin`); the trace
simulator (`pickspin.sim`) executes the same plan in simulated time.

A cold service is not free capacity: it serves nothing for `coldStartSeconds`. A warm
service of the same or a higher tier — a runner-up, or from the selector's `overflow` one
that is full, where the request queues — serves it now while the chosen one wakes, under
`substitute`, and under `hold` too when the cold start is longer than the profile's
`maxColdWaitSeconds` (such a hold could only time out). A lower tier answers only after a
timed-out hold. With nothing warm at all the request waits for the start the policy is
already making (`last_hold`) instead of failing.

>>> plan = cold_plan(settings, "balanced", chosen, runners_up)   # doctest: +SKIP
>>> plan.action, [c.service for c in plan.now]                    # doctest: +SKIP
('substitute', ['llama-3-70b-vllm', 'deepseek-r1-trtllm'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pickspin.core.events import Candidate
from pickspin.core.settings import TIERS, Settings

Action = Literal["none", "hold", "substitute"]

#: how long after its `coldStartSeconds` a woken service may still need to be ready: the
#: scaler activates it at its next poll (KEDA: 15 s) and readiness is probed after that
START_SLACK_SECONDS = 30.0


@dataclass(frozen=True)
class ColdPlan:
    """`now`: the order to try candidates in without waiting (for `hold`, after the cold
    service was waited for); `after_timeout`: the order when a `hold` timed out."""

    action: Action
    chosen: Candidate
    now: tuple[Candidate, ...]
    after_timeout: tuple[Candidate, ...] = ()
    #: the bounded wait for the cold service (seconds), from the profile
    limit: float = 0.0
    #: how long to hold once more for the first candidate of the order when none of them
    #: answered (`last_hold_seconds`)
    last_hold: float = 0.0


def last_hold_seconds(settings: Settings, profile: str, service: str) -> float:
    """The last wait before a request fails: the profile's `maxColdWaitSeconds`, or, when
    longer, the service's whole start (its `coldStartSeconds` + `START_SLACK_SECONDS`) —
    the request waits for the scale-up under way rather than being lost."""
    limit = settings.profile(profile).scaling.max_cold_wait_seconds
    return max(limit, settings.service(service).cold_start_seconds + START_SLACK_SECONDS)


def cold_plan(settings: Settings, profile: str, chosen: Candidate,
              runners_up: Sequence[Candidate], overflow: Sequence[Candidate] = ()
              ) -> ColdPlan:
    """The profile decides: `hold` waits (bounded) for the cold backend; `substitute`
    serves from the best warm candidate of the same or a higher tier now and wakes the cold
    one meanwhile (see the module doc for `overflow` and holds that cannot end in time)."""
    rest = [c for c in runners_up if c != chosen]
    extra = [c for c in overflow if c.warm and c not in rest and c != chosen]
    last = last_hold_seconds(settings, profile, chosen.service)
    if chosen.warm:
        return ColdPlan("none", chosen, (chosen, *rest, *extra), last_hold=last)
    scaling = settings.profile(profile).scaling
    floor = TIERS.index(settings.model(chosen.model).tier)

    def as_good(c: Candidate) -> bool:
        return c.warm and TIERS.index(settings.model(c.model).tier) >= floor

    # warm runners-up of the same or a higher tier, then (overflow) any with a free slot,
    # then full ones of the same or a higher tier, where the request queues
    warm = [c for c in rest if as_good(c)]
    if warm or any(as_good(c) for c in extra):
        warm += [c for c in extra if not c.full] + [c for c in extra if as_good(c) and c.full]
    extra = [c for c in extra if c not in warm]
    cold_rest = [c for c in rest if c not in warm]
    limit = scaling.max_cold_wait_seconds
    # after a timed-out hold: any warm candidate answers (a lower tier rather than nothing);
    # with none, the chosen service, starting for `limit` seconds already, comes before the
    # cold ones (holding for a cold runner-up would wake a second service, often another
    # backend of the same model, ready later still)
    lower = [c for c in cold_rest if c.warm] + extra
    cold = [c for c in cold_rest if not c.warm]
    in_time = settings.service(chosen.service).cold_start_seconds <= limit
    if warm and (scaling.cold_start == "substitute" or not in_time):
        return ColdPlan("substitute", chosen, (*warm, chosen, *cold_rest, *extra),
                        limit=limit, last_hold=last)
    # hold: in time, or no warm model as good (a lower tier answers only after the hold),
    # or nothing warm at all (then as long as the start takes)
    wait = limit if in_time or lower else last
    return ColdPlan("hold", chosen, (chosen, *rest, *extra), (*warm, *lower, chosen, *cold),
                    wait, last)
