"""Scheduled warm pools (a profile's `schedule`): more replicas at set times of the day, as
KEDA's `cron` trigger keeps them — the same numbers in the settings, the pools the selector
prices, the policy the scaler and the simulator run, and the chart's ScaledObjects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pickspin.core.policy import Cron, Observation, PollMemory, Reason, decide, poll, scaling_for
from pickspin.core.profiles import ScheduledPool, local_time_of_day
from pickspin.core.settings import Settings
from pickspin.core.warmpool import scheduled_pools, time_of_day, warm_order, warm_pools

VALUES = Path(__file__).resolve().parents[2] / "charts" / "pickspin" / "values.yaml"
SETTINGS = Settings.load(VALUES)
HOUR = 3600


def with_schedule(settings: Settings, profile: str, entries: list[dict],
                  timezone: str = "UTC") -> Settings:
    prof = settings.profile(profile)
    scaling = prof.scaling.model_validate(
        {**prof.scaling.model_dump(by_alias=True), "schedule": entries, "timezone": timezone})
    return settings.model_copy(update={"profiles": {
        **settings.profiles, profile: prof.model_copy(update={"scaling": scaling})}})


def test_a_window_may_cross_midnight_and_holds_its_start_not_its_end() -> None:
    day = ScheduledPool(start="07:00", end="21:00", warm_pool={"large": 1})
    night = ScheduledPool(start="21:00", end="07:00", warm_pool={"medium": 1})
    assert day.covers(7 * HOUR) and not day.covers(21 * HOUR) and not day.covers(3 * HOUR)
    assert night.covers(21 * HOUR) and night.covers(3 * HOUR) and not night.covers(7 * HOUR)
    assert day.covers(7 * HOUR + 86_400)  # any day


@pytest.mark.parametrize("entry, error", [
    ({"start": "07:00", "end": "07:00"}, "differ"),
    ({"start": "7:00", "end": "21:00"}, "pattern"),
    ({"start": "07:00", "end": "24:00"}, "pattern"),
    ({"start": "07:00", "end": "21:00", "warmPool": {"large": -1}}, ">= 0"),
    ({"start": "07:00", "end": "21:00", "warmPool": {"huge": 1}}, "huge"),
])
def test_bad_windows_are_refused(entry: dict, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ScheduledPool.model_validate(entry)


def test_a_matrix_without_a_named_service_skips_it_and_bad_zones_are_refused() -> None:
    data = SETTINGS.dump()
    data["profiles"]["balanced"]["scaling"]["schedule"] = [
        {"start": "01:00", "end": "02:00", "services": {"nope-vllm": 1}}]
    cut = Settings.from_mapping(data)  # `pickspin up --services` cuts the matrix, not profiles
    assert scheduled_pools(cut, "balanced")[0][1] == {s.name: 0 for s in cut.services}
    with pytest.raises(ValidationError, match="timezone"):
        SETTINGS.profile("balanced").scaling.model_validate({"timezone": "Mars/Olympus"})


def test_the_pools_at_a_time_of_day_add_the_windows_that_hold_it() -> None:
    s = with_schedule(SETTINGS, "balanced", [
        {"start": "07:00", "end": "21:00", "warmPool": {"large": 1}},
        {"start": "21:00", "end": "07:00", "services": {"qwen-3-235b-tgi": 1}},
        {"start": "12:00", "end": "13:00", "warmPool": {"small": 3}}])
    base = warm_pools(s, "balanced")
    small = warm_order(s, "small")[0].name
    large = warm_order(s, "large")[0].name
    assert warm_pools(s, "balanced", None) == base
    noon = warm_pools(s, "balanced", 12.5 * HOUR)
    assert noon[large] == 1 and noon[small] == 3 and noon["qwen-3-235b-tgi"] == 0
    night = warm_pools(s, "balanced", 3 * HOUR)
    assert night["qwen-3-235b-tgi"] == 1 and night[large] == 0 and night[small] == base[small]
    assert [pools["qwen-3-235b-tgi"] for _, pools in scheduled_pools(s, "balanced")] == [0, 1, 0]


def test_the_time_of_day_is_read_in_the_profiles_zone() -> None:
    s = with_schedule(SETTINGS, "balanced", [], timezone="Asia/Kolkata")
    assert time_of_day(s, "balanced", 0.0) == 5.5 * HOUR  # 1970-01-01 05:30 IST
    assert local_time_of_day(0.0, "UTC") == 0.0


def test_scaling_for_carries_the_cron_triggers_of_the_service() -> None:
    s = with_schedule(SETTINGS, "balanced", [
        {"start": "07:00", "end": "21:30", "warmPool": {"large": 1}}], timezone="Europe/Berlin")
    large = warm_order(s, "large")[0].name
    params = scaling_for(s, large, "balanced")
    assert params.schedules == (Cron(7 * HOUR, 21 * HOUR + 1800, 1),)
    assert params.timezone == "Europe/Berlin"
    assert scaling_for(s, warm_order(s, "large")[1].name, "balanced").schedules == ()
    assert params.scheduled(12 * HOUR) == 1 and params.scheduled(22 * HOUR) == 0
    assert params.scheduled(None) == 0


def test_cron_metadata_reads_daily_times_only() -> None:
    assert Cron.from_metadata({"start": "30 6 * * *", "end": "0 20 * * *",
                               "desiredReplicas": "2"}) == Cron(6 * HOUR + 1800, 20 * HOUR, 2)
    with pytest.raises(ValueError, match="daily"):
        Cron.from_metadata({"start": "0 6 * * 1-5", "end": "0 20 * * *",
                            "desiredReplicas": "1"})


def test_an_active_cron_trigger_wakes_holds_and_then_lets_go() -> None:
    s = with_schedule(SETTINGS, "balanced", [
        {"start": "07:00", "end": "21:00", "warmPool": {"large": 2}}])
    params = scaling_for(s, warm_order(s, "large")[0].name, "balanced")
    assert params.min_replicas == 0 and params.max_replicas == 1  # capped by the budget
    # inside the window: active without traffic, KEDA activates 0 → 1
    idle_in = Observation(demand=0, pending=0, current_replicas=0,
                          scheduled=params.scheduled(8 * HOUR))
    assert decide(idle_in, params).replicas == 1
    assert decide(idle_in, params).reason == Reason.ACTIVATE
    # and never cools down while it holds
    held = Observation(demand=0, pending=0, current_replicas=1, idle_seconds=10_000,
                       scheduled=params.scheduled(20 * HOUR))
    assert decide(held, params).replicas == 1
    # after the window: idle for the cooldown → zero
    after = Observation(demand=0, pending=0, current_replicas=1,
                        idle_seconds=params.cooldown_seconds,
                        scheduled=params.scheduled(21 * HOUR))
    assert decide(after, params).replicas == 0
    # poll() reads the time of day: activity in the window keeps last_active fresh
    memory = PollMemory(last_active=0.0)
    _, d = poll(memory, params, 0.0, 0.0, 1, now=50_000.0, time_of_day=12 * HOUR)
    assert d.replicas == 1 and memory.last_active == 50_000.0
    _, d = poll(memory, params, 0.0, 0.0, 1, now=50_100.0, time_of_day=21 * HOUR)
    assert d.replicas == 1  # within the cooldown after the window
    _, d = poll(memory, params, 0.0, 0.0, 1, now=50_000.0 + params.cooldown_seconds,
                time_of_day=21 * HOUR + params.cooldown_seconds)
    assert d.replicas == 0


def test_a_cron_trigger_asks_for_its_replicas_beside_the_demand() -> None:
    s = with_schedule(SETTINGS, "balanced", [
        {"start": "07:00", "end": "21:00", "warmPool": {"small": 3}}])
    params = scaling_for(s, warm_order(s, "small")[0].name, "balanced")
    quiet = Observation(demand=0.5, pending=0, current_replicas=1,
                        scheduled=params.scheduled(9 * HOUR))
    assert decide(quiet, params).replicas == 3
    busy = Observation(demand=10 * params.threshold, pending=0, current_replicas=3,
                       scheduled=params.scheduled(9 * HOUR))
    assert decide(busy, params).replicas == 8  # the demand's proposal, within the budget
