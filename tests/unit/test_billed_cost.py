"""Ĉ on the `billed` basis prices what the GPU bill charges for a choice: a warm replica with
a free slot that the warm pool keeps anyway is free, a replica above the pool costs the gap
to the next request, waking a service costs a whole replica's start and cooldown."""

from __future__ import annotations

import pytest

from pickspin.core.events import ServiceStats
from pickspin.core.scoring import (
    Billing,
    Ranges,
    ServiceView,
    billed_cost,
    cost_per_query,
    score,
    wake_cost,
)

HIGH = {"low": 0.03, "medium": 0.12, "high": 0.85}


def _view(settings, name: str, **stats) -> ServiceView:
    svc = settings.service(name)
    return ServiceView(svc, settings.model(svc.model), ServiceStats(**stats))


def test_billed_cost_follows_the_replica_seconds_a_choice_adds(settings):
    billing = Billing({"deepseek-r1-trtllm": 1}, cooldown_seconds=300)
    pooled = _view(settings, "deepseek-r1-trtllm", replicas=1, ready_replicas=1, running=3)
    assert billed_cost(pooled, 4.7, billing) == 0.0
    svc = settings.service("llama-3-70b-tgi")
    per_second = svc.cost_per_gpu_hour * svc.gpus / 3600
    busy = _view(settings, svc.name, replicas=1, ready_replicas=1, rate_per_second=2.0)
    idle = _view(settings, svc.name, replicas=1, ready_replicas=1, rate_per_second=0.0)
    assert billed_cost(busy, 4.9, billing) == pytest.approx(per_second * 0.5)
    assert billed_cost(idle, 4.9, billing) == pytest.approx(per_second * 300)
    cold = _view(settings, svc.name, replicas=0)
    assert wake_cost(svc, 300) == pytest.approx(per_second * (svc.cold_start_seconds + 300))
    assert billed_cost(cold, 4.9, billing) > wake_cost(svc, 300)


def test_on_the_billed_basis_the_warm_pool_is_cheaper_than_a_smaller_cold_model(settings):
    billing = Billing({"deepseek-r1-trtllm": 1}, cooldown_seconds=300)
    views = [_view(settings, "deepseek-r1-trtllm", replicas=1, ready_replicas=1),
             _view(settings, "llama-3-70b-tgi", replicas=0)]
    weights = settings.profile("balanced").weights
    allocated = score(views, HIGH, weights, Ranges.of(settings.services))
    billed = score(views, HIGH, weights, Ranges.of(settings.services, billing), None, billing)
    assert billed[0].cost == 1.0 and billed[1].cost < 0.5
    # the GPU time a request occupies says the opposite: 2 GPUs are cheaper than 8
    assert allocated[0].cost_per_query > allocated[1].cost_per_query / 50


def test_the_profile_chooses_the_basis(settings):
    assert {p: settings.profile(p).cost_basis for p in settings.profiles}["quality"] \
        == "allocated"


def test_the_billed_basis_prices_the_pools_that_hold_at_the_time_of_day(settings):
    """The served balanced profile schedules one deepseek-r1 replica by day: at noon the
    selector takes it as already paid for (Ĉ = 1), at 03:00 the same warm replica is above
    the pool and costs the gap to the next request; the night's qwen-3-235b replica the
    other way round. Through the night, once deepseek-r1's replica has cooled down to zero,
    the night's replica answers; by day the day's."""
    from pickspin.core.selection import select
    from pickspin.core.warmpool import warm_pools

    assert settings.profile("balanced").cost_basis == "billed"
    cold = {s.name: ServiceStats(replicas=0, ready_replicas=0) for s in settings.services}
    up = ServiceStats(replicas=1, ready_replicas=1, rate_per_second=0.01)
    both = cold | {name: up for name in ("deepseek-r1-trtllm", "qwen-3-235b-tgi")}
    cost = {}
    for hour in (3, 12):
        d = select(settings, both, HIGH, profile="balanced", complexity="high",
                   time_of_day=hour * 3600.0)
        cost[hour] = {c.service: c.breakdown.cost
                      for c in (d.chosen, *d.runners_up, *d.overflow)}
    assert cost[12]["deepseek-r1-trtllm"] == 1.0 > cost[3]["deepseek-r1-trtllm"]
    assert cost[3]["qwen-3-235b-tgi"] == 1.0 > cost[12]["qwen-3-235b-tgi"]
    for hour, warm in ((3, "qwen-3-235b-tgi"), (12, "deepseek-r1-trtllm")):
        d = select(settings, cold | {warm: up}, HIGH, profile="balanced", complexity="high",
                   time_of_day=hour * 3600.0)
        assert d.chosen.service == warm
    # without a time the selector prices the all-day pool only
    assert warm_pools(settings, "balanced")["deepseek-r1-trtllm"] == 0


def test_replicas_nobody_reports_are_priced_by_the_gpu_time_a_request_occupies(settings):
    """Without a scaler (`pickspin up --always-on`, `pickspin replay`) the selector does not
    know which replicas the pools pay for: a warm service of unknown replicas is charged its
    slot share, not taken as free (every one of them was, and an easy prompt went to the
    large model whose R̂ edged the small one's)."""
    billing = Billing({"gemma-3-27b-trtllm": 1}, cooldown_seconds=300)
    for name in ("gemma-3-27b-trtllm", "qwen-3-235b-trtllm", "deepseek-r1-trtllm"):
        unknown = _view(settings, name)
        assert billed_cost(unknown, 4.0, billing) == cost_per_query(unknown.service, 4.0) > 0
    known = _view(settings, "gemma-3-27b-trtllm", replicas=1, ready_replicas=1)
    assert billed_cost(known, 4.0, billing) == 0.0
