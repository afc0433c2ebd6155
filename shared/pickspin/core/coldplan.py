"""What Spin does when the chosen service is cold, as a pure function of the selector's
decision and the profile: hold the request for it, or serve a warm substitute now and wake
it. The gateway executes the plan with real waits (`gateway.app.Gateway._spin`); the trace
simulator (`pickspin.sim`) executes the same plan in simulated time.

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


def cold_plan(settings: Settings, profile: str, chosen: Candidate,
              runners_up: Sequence[Candidate]) -> ColdPlan:
    """The profile decides: `hold` waits (bounded) for the cold backend; `substitute`
    serves from the best warm candidate now and wakes the cold one meanwhile. A substitute
    never answers worse: only a warm model of the same or a higher tier qualifies."""
    rest = list(runners_up)
    if chosen.warm:
        return ColdPlan("none", chosen, (chosen, *rest))
    scaling = settings.profile(profile).scaling
    floor = TIERS.index(settings.model(chosen.model).tier)
    warm = [c for c in rest if c.warm and TIERS.index(settings.model(c.model).tier) >= floor]
    cold_rest = [c for c in rest if c not in warm]
    limit = scaling.max_cold_wait_seconds
    if scaling.cold_start == "substitute" and warm:
        return ColdPlan("substitute", chosen, (*warm, chosen, *cold_rest), limit=limit)
    # after a timed-out hold: any warm candidate answers (a lower tier rather than nothing);
    # with none, the chosen service, starting for `limit` seconds already, comes before the
    # cold ones (holding for a cold runner-up would wake a second service, often another
    # backend of the same model, ready later still)
    lower = [c for c in cold_rest if c.warm]
    cold = [c for c in cold_rest if not c.warm]
    return ColdPlan("hold", chosen, (chosen, *rest), (*warm, *lower, chosen, *cold), limit)
