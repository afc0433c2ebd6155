"""The simulator executes the library's decisions faithfully and accounts for every request
and every replica-second."""

import math

import numpy as np
import pytest

from pickspin.core.policy import scaling_for
from pickspin.core.selection import select, views_of
from pickspin.core.warmpool import warm_order, warm_pools
from pickspin.sim.command import as_local
from pickspin.sim.engine import EVEN, Simulation, simulate
from pickspin.sim.runs import CLUSTER, LOCAL, Config
from pickspin.sim.timing import ServiceTiming
from pickspin.sim.trace import Trace, TraceSpec, generate


def _trace(rows, times):
    keys = sorted(rows)
    return Trace(np.array(times, dtype=float), tuple(keys[i % len(keys)] for i in
                                                     range(len(times))))


def test_every_request_is_served_or_failed_once_and_a_seed_repeats_the_run(settings, rows):
    trace = generate(TraceSpec("bursty", 1500, 3600, seed=4, burst_factor=5), sorted(rows))
    config = Config("pickspin/cost", "cost")
    a = simulate(settings, config, trace, rows, CLUSTER, seed=5)
    o = a.outcome
    served = o.service >= 0
    assert int(served.sum()) + a.failed + a.errors == len(trace)
    assert not np.isnan(o.latency[served]).any() and np.isnan(o.latency[~served]).all()
    assert (o.latency[served] >= o.ttft[served]).all()
    b = simulate(settings, config, trace, rows, CLUSTER, seed=5)
    assert np.array_equal(a.outcome.service, b.outcome.service)
    assert np.array_equal(a.outcome.ttft, b.outcome.ttft, equal_nan=True)
    assert a.replica_seconds == b.replica_seconds


def test_littles_law_holds_on_a_steady_trace(settings, rows):
    name = "gemma-3-27b-vllm"
    trace = generate(TraceSpec("steady", 7200, 7200, seed=1), sorted(rows))
    r = simulate(settings, Config("static", "balanced", static={name: 1}), trace, rows,
                 CLUSTER)
    o = r.outcome
    assert {r.services[i] for i in o.service} == {name}  # only what is deployed serves
    in_service = r.busy_slot_seconds / r.horizon  # L, integrated over time
    arrival_rate = len(trace) / r.horizon  # λ
    mean_time = float(np.mean(o.latency))  # W, from the requests (no queue at 1 req/s)
    assert in_service == pytest.approx(arrival_rate * mean_time, rel=0.01)
    timing = ServiceTiming.of(settings.service(name))
    assert mean_time == pytest.approx(timing.mean_service_seconds(128), rel=0.03)
    # a static replica costs the whole horizon, idle or not
    assert r.replica_seconds[name] == pytest.approx(r.horizon)
    assert r.gpu_dollars[name] == pytest.approx(r.horizon * 3.0 / 3600)


def test_a_request_for_a_service_at_zero_is_a_cold_start_and_waits_for_it(settings, rows):
    settings = as_local(settings)
    low = next(k for k, r in rows.items() if r.complexity == "low")
    # the cost profile keeps no warm pool; the local run's cold starts are seconds long
    trace = Trace(np.array([10.0, 400.0]), (low, low))
    r = simulate(settings, Config("pickspin/cost", "cost"), trace, rows, LOCAL)
    o = r.outcome
    assert r.failed == 0
    name = r.services[int(o.service[0])]
    cold = settings.service(name).cold_start_seconds + LOCAL.spawn_seconds
    assert o.cold_wait[0] and o.ttft[0] >= cold
    # idle for longer than the cooldown in between: to zero, then a second cold start
    assert settings.profile("cost").scaling.cooldown_seconds < 390
    assert r.cold_starts[name] == 2 and o.cold_wait[1]
    assert sum(r.cold_starts.values()) == 2
    assert r.replicas[-1].sum() <= 1


def test_warm_pools_are_ready_at_the_start_and_cost_while_idle(settings, rows):
    low = next(k for k, r in rows.items() if r.complexity == "low")
    r = simulate(settings, Config("pickspin/balanced", "balanced"),
                 Trace(np.array([3600.0]), (low,)), rows, CLUSTER)
    base = {n for n, k in warm_pools(settings, "balanced").items() if k}
    assert base == {warm_order(settings, "small")[0].name}  # one warm small service
    # the generated day starts at midnight: the night's scheduled pool is warm too
    pools = {n for n, k in warm_pools(settings, "balanced", time_of_day=0.0).items() if k}
    assert pools > base
    assert {n for n, sec in r.replica_seconds.items() if sec >= 3600} == pools
    assert not r.outcome.cold_wait[0]


def test_a_scheduled_pool_is_warm_in_its_window_and_scales_to_zero_after_it(settings, rows):
    """A day with one large replica scheduled from 01:00 to 02:00 and no traffic: the
    replica starts at 01:00 (the cron trigger activates the ScaledObject), is billed through
    the window and is gone one cooldown after it; the static sizing of the same profile
    reads the pools at each request's time."""
    prof = settings.profile("balanced")
    entry = {"start": "01:00", "end": "02:00", "warmPool": {"large": 1}}
    scaling = prof.scaling.model_validate(
        {**prof.scaling.model_dump(by_alias=True), "schedule": [entry]})
    changed = settings.model_copy(update={"profiles": {
        **settings.profiles, "balanced": prof.model_copy(update={"scaling": scaling})}})
    large = warm_order(changed, "large")[0]
    low = next(k for k, r in rows.items() if r.complexity == "low")
    r = simulate(changed, Config("pickspin/balanced", "balanced"),
                 Trace(np.array([3.5 * 3600]), (low,)), rows, CLUSTER)
    col = r.services.index(large.name)
    up = r.samples[r.replicas[:, col] > 0]
    assert up.min() == pytest.approx(3600, abs=CLUSTER.polling_seconds)
    cooldown = prof.scaling.cooldown_seconds
    assert up.max() == pytest.approx(7200 + cooldown, abs=2 * CLUSTER.polling_seconds
                                     + CLUSTER.sample_seconds)
    assert r.cold_starts[large.name] == 1
    assert r.replica_seconds[large.name] == pytest.approx(
        3600 + cooldown, abs=large.cold_start_seconds + 3 * CLUSTER.polling_seconds)


def test_a_burst_beyond_one_replica_scales_out_by_littles_law(settings, rows):
    settings = as_local(settings)
    high = [k for k, r in rows.items() if r.complexity == "high"]
    times = np.linspace(0, 600, 6000)  # 10 requests a second for ten minutes
    trace = Trace(times, tuple(high[i % len(high)] for i in range(len(times))))
    r = simulate(settings, Config("only", "balanced", model="llama-3-70b"), trace, rows,
                 LOCAL)
    o = r.outcome
    assert r.failed == 0
    (col,) = set(o.service.tolist())  # one backend of the model takes the burst
    name = r.services[col]
    assert settings.service(name).model == "llama-3-70b"
    steady = (trace.times > 120) & (trace.times < 580)
    demand = steady.sum() / 460 * float(o.latency[steady].mean())  # λ × W
    threshold = scaling_for(settings, name, "balanced").threshold
    expected = math.ceil(demand / threshold)
    assert expected >= 2  # more than one replica's worth
    during = (r.samples > 120) & (r.samples < 580)
    assert float(np.median(r.replicas[during, col])) == expected


def test_the_snapshot_shows_requests_in_flight_so_a_full_service_is_no_candidate(
        settings, rows):
    """Algorithm 2 takes only services with free capacity: like `promstats`, the simulated
    snapshot carries the requests in flight at each service as `running`."""
    low = next(k for k, r in rows.items() if r.complexity == "low")
    deployed = {"gemma-3-27b-vllm": 1, "gemma-3-27b-tgi": 1}
    config = Config("two", "balanced", model="gemma-3-27b", static=deployed)
    sim = Simulation(settings, config, Trace(np.array([0.0]), (low,)), rows, CLUSTER)
    full = settings.service("gemma-3-27b-vllm").concurrency
    sim.svc["gemma-3-27b-vllm"].inflight = full
    sim._tick()
    assert sim.snapshot["gemma-3-27b-vllm"].running == full
    views = {v.service.name: v for v in views_of(settings, sim.snapshot)}
    assert not views["gemma-3-27b-vllm"].eligible and views["gemma-3-27b-tgi"].eligible
    picked = select(settings, sim.snapshot, EVEN, model="gemma-3-27b")
    assert picked.chosen.service == "gemma-3-27b-tgi"


def test_a_burst_that_fills_the_warm_large_replica_loses_no_request(settings, rows):
    """Quality keeps one deepseek-r1 replica warm; 12 hard prompts a second fill it. The
    overflow goes to a warm service (llama-3-70b's pool, or the full replica's queue) while
    a cold deepseek-r1 backend wakes; none is held for a start longer than the hold (which
    used to fail them: 6,041 requests on the bursty day)."""
    high = [k for k, r in rows.items() if r.complexity == "high"]
    times = np.linspace(0, 180, 12 * 180)
    trace = Trace(times, tuple(high[i % len(high)] for i in range(len(times))))
    r = simulate(settings, Config("pickspin/quality", "quality"), trace, rows, CLUSTER)
    o = r.outcome
    assert r.failed == 0 and r.errors == 0 and (o.service >= 0).all()
    assert "hold" not in o.action and "hold-timeout" not in o.action
    served_by = {r.services[i] for i in set(o.service.tolist())}
    assert "deepseek-r1-trtllm" in served_by and "llama-3-70b-trtllm" in served_by
    # nobody waited for a start (the shortest large one is 240 s)
    assert float(o.ttft.max()) < min(s.cold_start_seconds for s in settings.services
                                     if settings.model(s.model).tier == "large")
