"""pickspin.core.policy: paper Algorithm 1 (Little's law, warm pool, cooldown) with KEDA's and
the HPA's semantics, checked case by case."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pickspin.core.policy import (
    Observation,
    Reason,
    ScalingParams,
    decide,
    metric_proposal,
    scaling_for,
    stabilize,
)
from pickspin.core.settings import Settings
from pickspin.core.warmpool import warm_pools

VALUES = Path(__file__).resolve().parents[2] / "charts" / "pickspin" / "values.yaml"
PARAMS = ScalingParams(service="m-vllm", threshold=10.0, min_replicas=0, max_replicas=6,
                       cooldown_seconds=300, stabilization_seconds=120)


def obs(demand: float = 0, pending: float = 0, current: int = 1, idle: float = 0,
        recent: tuple[int, ...] = ()) -> Observation:
    return Observation(demand=demand, pending=pending, current_replicas=current,
                       idle_seconds=idle, recent_recommendations=recent)


def test_littles_law_capacity_is_ceil_of_demand_over_target() -> None:
    decision = decide(obs(demand=25, current=1), PARAMS)
    assert decision.replicas == math.ceil(25 / 10) == 3
    assert decision.reason is Reason.SCALE_UP and decision.recommendation == 3


def test_pending_requests_count_as_demand_too() -> None:
    assert decide(obs(demand=0, pending=41, current=1), PARAMS).replicas == 5


def test_clamped_to_the_gpu_budget() -> None:
    assert decide(obs(demand=1000, current=2), PARAMS).replicas == PARAMS.max_replicas


def test_pending_wakes_a_backend_at_zero() -> None:
    decision = decide(obs(pending=1, current=0, idle=10_000), PARAMS)
    assert (decision.replicas, decision.reason, decision.active) == (1, Reason.ACTIVATE, True)


def test_from_zero_keda_goes_to_one_whatever_the_demand() -> None:
    """KEDA moves 0 → max(min, 1); the HPA takes it from there at the next poll."""
    assert decide(obs(demand=55, current=0), PARAMS).replicas == 1


def test_demand_at_or_below_activation_does_not_wake() -> None:
    params = ScalingParams(**{**PARAMS.__dict__, "activation_threshold": 0.5})
    decision = decide(obs(demand=0.5, current=0), params)
    assert (decision.replicas, decision.reason, decision.active) == (0, Reason.IDLE, False)


def test_idle_within_cooldown_holds_one_replica() -> None:
    decision = decide(obs(current=1, idle=299), PARAMS)
    assert decision.replicas == 1 and not decision.active


def test_idle_past_cooldown_scales_to_zero() -> None:
    decision = decide(obs(current=3, idle=300), PARAMS)
    assert (decision.replicas, decision.reason) == (0, Reason.COOLDOWN_ELAPSED)


def test_warm_pool_never_goes_to_zero() -> None:
    params = ScalingParams(**{**PARAMS.__dict__, "min_replicas": 2})
    assert decide(obs(current=2, idle=10_000), params).replicas == 2
    at_zero = decide(obs(current=0, idle=10_000), params)
    assert (at_zero.replicas, at_zero.reason) == (2, Reason.WARM_POOL)
    assert decide(obs(demand=1, current=0), params).replicas == 2


def test_warm_pool_is_capped_by_the_budget() -> None:
    params = ScalingParams(**{**PARAMS.__dict__, "min_replicas": 9, "max_replicas": 2})
    assert decide(obs(current=0, idle=10_000), params).replicas == 2


def test_ten_percent_tolerance_keeps_the_current_replicas() -> None:
    assert metric_proposal(value=31, threshold=10, current=3) == 3  # ratio 1.033
    assert metric_proposal(value=34, threshold=10, current=3) == 4  # ratio 1.133
    decision = decide(obs(demand=31, current=3), PARAMS)
    assert (decision.replicas, decision.reason) == (3, Reason.WITHIN_TOLERANCE)


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    held = decide(obs(demand=5, current=5, recent=(5, 4)), PARAMS)
    assert (held.replicas, held.reason, held.recommendation) == (5, Reason.STABILIZING, 1)
    partly = decide(obs(demand=5, current=5, recent=(3, 2)), PARAMS)
    assert (partly.replicas, partly.reason) == (3, Reason.SCALE_DOWN)
    free = decide(obs(demand=5, current=5), PARAMS)
    assert free.replicas == 1


def test_scale_up_is_not_delayed_by_the_window() -> None:
    assert stabilize(raw=6, current=2, recent=(1, 1, 1)) == 6
    assert stabilize(raw=1, current=4, recent=(9,)) == 4  # never above the current


def test_scaling_for_follows_profile_and_tier() -> None:
    settings = Settings.load(VALUES)
    for profile_name, profile in settings.profiles.items():
        for svc in settings.services:
            params = scaling_for(settings, svc.name, profile_name)
            assert params.min_replicas == warm_pools(settings, profile_name)[svc.name]
            assert params.max_replicas == svc.max_replicas
            assert params.cooldown_seconds == profile.scaling.cooldown_seconds
            assert params.stabilization_seconds == \
                profile.scaling.scale_down_stabilization_seconds
            assert math.isclose(params.threshold,
                                svc.concurrency * profile.scaling.target_utilization)
            assert (params.model, params.backend) == (svc.model, svc.backend)


def test_scaling_for_defaults_to_the_default_profile_and_names_unknowns() -> None:
    settings = Settings.load(VALUES)
    name = settings.services[0].name
    assert scaling_for(settings, name) == scaling_for(settings, name, settings.default_profile)
    with pytest.raises(KeyError, match="unknown service 'nope'"):
        scaling_for(settings, "nope")
    with pytest.raises(KeyError, match="unknown profile 'turbo'"):
        scaling_for(settings, name, "turbo")
