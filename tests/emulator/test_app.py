"""The ASGI app in-process: cold start, error injection, routing, queueing, disconnects."""

from __future__ import annotations

import asyncio
import json
import random

import httpx

from pickspin.adapters.engine_stats import EngineStats
from pickspin.core.settings import BackendKind
from pickspin.emulator.app import EmulatorApp
from pickspin.emulator.profile import EmulationProfile

FAST = EmulationProfile(ttft_ms_median=5, ttft_ms_p99=10, tokens_per_second=500,
                        max_concurrency=4)
CHAT = {"model": "gemma-3-27b", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5}


def make_app(profile: EmulationProfile = FAST, kind: BackendKind = BackendKind.VLLM,
             **kwargs: object) -> EmulatorApp:
    return EmulatorApp(model="gemma-3-27b", kind=kind, profile=profile,
                       rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def client(app: EmulatorApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emu")


async def test_cold_start_answers_503_then_200() -> None:
    now = [100.0]
    app = make_app(EmulationProfile(5, 10, 500, 4, cold_start_seconds=3.0),
                   clock=lambda: now[0])
    async with client(app) as c:
        health = await c.get("/health")
        chat = await c.post("/v1/chat/completions", json=CHAT)
        assert health.status_code == chat.status_code == 503
        assert chat.json()["error"]["code"] == "model_loading"
        assert (await c.get("/v1/models")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200
        now[0] += 3.0
        assert (await c.get("/health")).status_code == 200
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_error_rate_one_fails_every_request_before_any_token() -> None:
    app = make_app(FAST.with_overrides(error_rate=1.0))
    async with client(app) as c:
        for _ in range(3):
            r = await c.post("/v1/chat/completions", json={**CHAT, "stream": True})
            assert r.status_code == 500
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"]["code"] == "emulated_failure"
        stats = EngineStats.from_scrape("vllm", (await c.get("/metrics")).text)
    assert stats.success_count == 0.0 and stats.running == 0.0


async def test_routing_errors_use_the_envelope() -> None:
    async with client(make_app()) as c:
        missing = await c.get("/v2/nothing")
        wrong_method = await c.get("/v1/chat/completions")
        bad = await c.post("/v1/completions", content=b"{oops")
    assert (missing.status_code, wrong_method.status_code, bad.status_code) == (404, 405, 400)
    for r in (missing, wrong_method, bad):
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


async def test_non_streamed_chat_and_completion() -> None:
    async with client(make_app()) as c:
        chat = (await c.post("/v1/chat/completions", json=CHAT)).json()
        comp = (await c.post("/v1/completions",
                             json={"model": "gemma-3-27b", "prompt": "x"})).json()
    assert chat["usage"]["completion_tokens"] == 5
    assert chat["choices"][0]["finish_reason"] == "length"
    assert chat["system_fingerprint"] == "pickspin-emulator-vllm"
    assert comp["usage"]["completion_tokens"] == 64  # the default without max_tokens
    assert comp["choices"][0]["finish_reason"] == "stop"


async def test_streamed_chat_sends_one_chunk_per_token_then_done() -> None:
    async with client(make_app()) as c:
        r = await c.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.headers["content-type"] == "text/event-stream"
    events = [line[len("data: "):] for line in r.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    tokens = [ch for ch in chunks if ch["choices"][0]["delta"].get("content")]
    assert len(tokens) == 5 and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_trtllm_serves_metrics_under_prometheus_path_only() -> None:
    async with client(make_app(kind=BackendKind.TRTLLM)) as c:
        assert (await c.get("/prometheus/metrics")).status_code == 200
        assert (await c.get("/metrics")).status_code == 404


async def test_requests_beyond_max_concurrency_wait_and_are_counted() -> None:
    app = make_app(EmulationProfile(100, 101, 1000, 1))
    async with client(app) as c:
        first = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        second = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await asyncio.sleep(0.03)
        stats = EngineStats.from_scrape("vllm", (await c.get("/metrics")).text)
        await asyncio.gather(first, second)
        after = EngineStats.from_scrape("vllm", (await c.get("/metrics")).text)
    assert (stats.running, stats.waiting, stats.kv_cache_usage) == (1.0, 1.0, 1.0)
    assert (after.running, after.waiting, after.success_count) == (0.0, 0.0, 2.0)
    # the second waited ~0.1 s for the slot, then had its own ~0.1 s TTFT
    assert after.ttft_sum is not None and after.ttft_sum > 0.29


async def test_a_client_leaving_the_queue_frees_its_place() -> None:
    app = make_app(EmulationProfile(200, 201, 1000, 1))
    body = json.dumps(CHAT).encode()
    sent: list[dict[str, object]] = []

    async def receive_then_leave() -> dict[str, object]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
    async with client(app) as c:
        holder = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await asyncio.sleep(0.02)
        await asyncio.wait_for(app(scope, receive_then_leave, send), timeout=1.0)
        assert app.waiting == 0
        assert len(sent) == 1  # nothing was sent to the client that left
        assert (await holder).status_code == 200
    assert (app.running, app.waiting) == (0, 0)


async def test_a_client_leaving_mid_generation_frees_its_slot_at_once() -> None:
    app = make_app(EmulationProfile(5, 10, 100.0, 1))  # 500 tokens would take 5 s
    body = json.dumps({**CHAT, "max_tokens": 500}).encode()
    calls = 0

    async def receive_then_leave() -> dict[str, object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
    await asyncio.wait_for(app(scope, receive_then_leave, send), timeout=1.0)
    assert (app.running, app.waiting) == (0, 0)
    stats = EngineStats.from_scrape("vllm", app.metrics.render().decode())
    assert stats.success_count == 0.0
