"""`LatestSnapshot`: pushed snapshots kept newest-first, a pull when the copy is older than
`max_age`, a bounded wait for it, one pull at a time, and no hammering of a telemetry that is
down; and telemetry answering `telemetry.requested` from its cache."""

from __future__ import annotations

import asyncio
import time

import pytest

from pickspin.core.events import TelemetrySnapshot
from pickspin.core.snapshots import LatestSnapshot
from tests.functions.test_event_functions import post, reply_event, sdk_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snap(at: float) -> TelemetrySnapshot:
    return TelemetrySnapshot(generated_at=at, window_seconds=60, services={})


class Telemetry:
    """A pull that answers the next snapshot, after `delay` seconds, or fails."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay, self.fail, self.calls, self.at = delay, fail, 0, 0.0

    async def __call__(self) -> TelemetrySnapshot | None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            return None
        self.at += 1
        return snap(self.at)


def test_an_older_push_does_not_replace_a_newer_snapshot():
    latest = LatestSnapshot(clock=Clock())
    assert latest.offer(snap(5.0))
    assert not latest.offer(snap(4.0))
    assert latest.offer(snap(5.0))  # the same moment: taken
    assert latest.snapshot is not None and latest.snapshot.generated_at == 5.0


def test_a_snapshot_stamped_in_the_future_pins_nothing_past_max_age():
    clock = Clock()
    latest = LatestSnapshot(max_age=5, clock=clock)
    assert latest.offer(snap(1e12))  # a bogus timestamp
    assert not latest.offer(snap(3.0))  # while it is fresh, a "older" one is skipped
    clock.now += 5.1
    assert latest.offer(snap(4.0))  # then arrival order wins
    assert latest.snapshot is not None and latest.snapshot.generated_at == 4.0


async def test_a_fresh_copy_is_used_without_pulling():
    clock, telemetry = Clock(), Telemetry()
    latest = LatestSnapshot(telemetry, max_age=5, clock=clock)
    latest.offer(snap(0.5))
    clock.now += 2.4
    assert (await latest.current()) is latest.snapshot
    await asyncio.sleep(0.01)
    assert telemetry.calls == 0


async def test_an_ageing_copy_is_refreshed_in_the_background_without_a_wait():
    """Past half its max age the copy is still routed on at once, while a pull runs behind
    it; the request after that routes on the pulled one, so steady traffic never waits."""
    clock, telemetry = Clock(), Telemetry(delay=0.2)
    latest = LatestSnapshot(telemetry, max_age=5, wait=1.0, clock=clock)
    held = snap(0.5)
    latest.offer(held)
    clock.now += 4.9
    start = time.monotonic()
    assert (await latest.current()) is held  # not waited for: the copy is still fresh
    assert time.monotonic() - start < 0.1
    await asyncio.sleep(0.3)
    assert telemetry.calls == 1
    got = await latest.current()
    assert got is not None and got.generated_at == 1.0
    assert not latest.stale() and telemetry.calls == 1


async def test_a_stale_copy_is_pulled_before_routing():
    clock, telemetry = Clock(), Telemetry()
    latest = LatestSnapshot(telemetry, max_age=5, clock=clock)
    latest.offer(snap(0.5))
    clock.now += 5.1
    got = await latest.current()
    assert telemetry.calls == 1 and got is not None and got.generated_at == 1.0
    assert (await latest.current()) is got  # confirmed just now: no second pull
    assert telemetry.calls == 1


async def test_the_wait_for_a_slow_pull_is_bounded_and_its_answer_lands_later():
    telemetry = Telemetry(delay=0.3)
    latest = LatestSnapshot(telemetry, max_age=5, wait=0.05)
    start = time.monotonic()
    assert (await latest.current()) is None  # routes on what it has (priors)
    assert time.monotonic() - start < 0.25
    await asyncio.sleep(0.4)
    assert latest.snapshot is not None and latest.snapshot.generated_at == 1.0


async def test_requests_arriving_together_share_one_pull():
    telemetry = Telemetry(delay=0.05)
    latest = LatestSnapshot(telemetry, max_age=5, wait=1.0)
    results = await asyncio.gather(*(latest.current() for _ in range(20)))
    assert telemetry.calls == 1
    assert all(r is not None and r.generated_at == 1.0 for r in results)


async def test_a_down_telemetry_is_asked_at_most_once_per_half_max_age():
    clock, telemetry = Clock(), Telemetry(fail=True)
    latest = LatestSnapshot(telemetry, max_age=5, clock=clock)
    for _ in range(10):
        assert (await latest.current()) is None
    assert telemetry.calls == 1
    clock.now += 2.4
    await latest.current()
    assert telemetry.calls == 1
    clock.now += 0.2  # half the max age since the failed attempt
    await latest.current()
    await asyncio.sleep(0.01)
    assert telemetry.calls == 2


async def test_without_a_telemetry_url_pushed_snapshots_are_all_there_is():
    latest = LatestSnapshot(None, max_age=0.0)
    assert (await latest.current()) is None
    latest.offer(snap(3.0))
    assert (await latest.current()) is latest.snapshot


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_a_bad_max_age_fails_start_up(start_function, value):
    from pickspin.core.errors import ConfigError

    with pytest.raises(ConfigError, match="PICKSPIN_SNAPSHOT_MAX_AGE"):
        start_function("selector", {"PICKSPIN_SNAPSHOT_MAX_AGE": value})


async def test_telemetry_answers_a_request_from_its_cache_while_young_enough(start_function):
    fn = start_function("telemetry")
    tick = reply_event(await post(fn, sdk_event("dev.knative.sources.ping", {}), "binary"))
    generated = tick.get_data()["generated_at"]

    async def ask(max_age: float) -> float:
        reply = await post(fn, sdk_event("io.pickspin.telemetry.requested",
                                         {"max_age_seconds": max_age}), "structured")
        assert reply.status == 200
        return float(reply_event(reply).get_data()["generated_at"])

    assert await ask(60) == generated  # the tick's snapshot, not computed again
    await asyncio.sleep(0.01)
    assert await ask(0) > generated  # too old for this asker: a new one
    bad = await post(fn, sdk_event("io.pickspin.telemetry.requested",
                                   {"max_age_seconds": -1}), "binary")
    assert bad.status == 400


async def test_with_telemetry_down_a_stale_copy_gives_way_to_live_probes():
    clock, telemetry = Clock(), Telemetry()
    telemetry.fail = True
    probed: list[object] = []

    async def probe(held):
        probed.append(held)
        return snap(99.0)

    latest = LatestSnapshot(telemetry, max_age=5, clock=clock, probe=probe, stale_after=15)
    latest.offer(snap(0.5))
    clock.now += 5.1  # stale, telemetry down, but the copy is still young enough to keep
    assert (await latest.current()).generated_at == 0.5
    assert probed == []
    clock.now += 15.0  # now older than stale_after: the backends are probed instead
    assert (await latest.current()).generated_at == 99.0
    assert len(probed) == 1 and probed[0].generated_at == 0.5
