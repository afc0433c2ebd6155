"""The local scaler reads its triggers as KEDA's prometheus scaler does: an empty result is a
failed poll (ignoreNullValues false, as the chart renders it), and after failureThreshold
failed polls in a row the fallback applies; requests the pool holds count as pending."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pickspin.local.scaledobjects import load
from pickspin.local.scaler import EmptyResult, LocalScaler, value_of

SERVICE = "gemma-3-27b-vllm"


class FakePool:
    def __init__(self, count: int = 1, waiting: int = 0) -> None:
        self.count, self.waiting, self.scaled = count, waiting, []

    async def check(self) -> None:
        pass

    async def scale_to(self, n: int) -> None:
        self.scaled.append(n)
        self.count = n


@pytest.fixture(scope="module")
def objects(settings):
    return load(settings, "http://prometheus.invalid")


def scaler(objects, pool: FakePool, answers: dict[str, float | None]) -> LocalScaler:
    so = objects[SERVICE]

    async def query(promql: str) -> float | None:
        return answers["demand" if promql == so.demand.query else "pending"]

    return LocalScaler({SERVICE: so}, {SERVICE: pool}, query)  # type: ignore[dict-item]


def test_the_chart_renders_triggers_that_do_not_ignore_empty_results(objects):
    so = objects[SERVICE]
    assert not so.demand.ignore_null_values and not so.pending.ignore_null_values
    assert so.fallback is not None and so.fallback.failure_threshold >= 1


async def test_an_empty_result_counts_as_zero_only_when_the_trigger_says_so(objects):
    trigger = objects[SERVICE].demand

    async def empty(promql: str) -> None:
        return None

    with pytest.raises(EmptyResult):
        await value_of(empty, trigger)
    assert await value_of(empty, replace(trigger, ignore_null_values=True)) == 0.0


async def test_failed_polls_keep_replicas_until_the_fallback_threshold(objects):
    fb = objects[SERVICE].fallback
    pool = FakePool(count=3)
    s = scaler(objects, pool, {"demand": None, "pending": 0.0})
    for _ in range(fb.failure_threshold - 1):
        await s.poll()
    assert pool.scaled == []  # unchanged while below the threshold
    await s.poll()
    # currentReplicasIfHigher keeps the 3 that run rather than dropping to the fallback count
    expected = max(fb.replicas, 3) if fb.behavior == "currentReplicasIfHigher" else fb.replicas
    assert pool.scaled == [expected]


async def test_a_request_held_by_the_pool_wakes_a_service_at_zero(objects):
    pool = FakePool(count=0, waiting=1)
    await scaler(objects, pool, {"demand": 0.0, "pending": 0.0}).poll()
    assert pool.scaled and pool.scaled[-1] >= 1
