"""The local scaler reads its triggers as KEDA's prometheus scaler does: an empty result is a
failed poll (ignoreNullValues false, as the chart renders it), and after failureThreshold
failed polls in a row the fallback applies; requests the pool holds count as pending."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
import requests

from pickspin.core.telemetry import StatsUnavailable
from pickspin.local.scaledobjects import load
from pickspin.local.scaler import (
    EmptyResult,
    LocalScaler,
    prometheus_query,
    status_app,
    value_of,
)

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


class FakeClient:
    """prometheus-api-client's `custom_query`, answering from a table or failing."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.answers = answers

    def custom_query(self, query: str) -> list[dict[str, Any]]:
        if self.answers is None:
            raise requests.ConnectionError("connection refused")
        return self.answers[query]


async def test_triggers_run_through_the_library_prometheus_client(objects):
    so = objects[SERVICE]
    client = FakeClient({so.demand.query: [{"metric": {}, "value": [0, "2.5"]}],
                         so.pending.query: []})
    query = prometheus_query(client)
    assert await query(so.demand.query) == 2.5
    assert await query(so.pending.query) is None  # empty: a failed poll for this trigger
    with pytest.raises(StatsUnavailable, match="connection refused"):
        await prometheus_query(FakeClient())(so.demand.query)


async def test_prometheus_down_is_a_failed_poll_not_a_crash(objects):
    fb = objects[SERVICE].fallback
    pool = FakePool(count=2)
    s = LocalScaler({SERVICE: objects[SERVICE]}, {SERVICE: pool},  # type: ignore[dict-item]
                    prometheus_query(FakeClient()))
    for _ in range(fb.failure_threshold):
        await s.poll()
    assert s.history[SERVICE].failures == fb.failure_threshold


class ReapingPool(FakePool):
    def __init__(self) -> None:
        super().__init__(count=1)
        self.reaped = 0
        self.ready_count, self.restarts, self.replicas = 1, 0, []
        self.last_crash, self.last_recovery_seconds = None, None

    def reap(self) -> None:
        self.reaped += 1


async def test_the_status_app_answers_replicas_health_and_404(objects):
    pool = ReapingPool()
    s = LocalScaler({SERVICE: objects[SERVICE]}, {SERVICE: pool},  # type: ignore[dict-item]
                    prometheus_query(FakeClient()))
    transport = httpx.ASGITransport(app=status_app(s))
    async with httpx.AsyncClient(transport=transport, base_url="http://scaler") as http:
        replicas = await http.get("/replicas")
        assert replicas.status_code == 200 and pool.reaped == 1  # dead replicas looked for first
        assert replicas.json()[SERVICE]["replicas"] == 1
        assert (await http.get("/health")).text == "ok"
        assert (await http.get("/nope")).status_code == 404
