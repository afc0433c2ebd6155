"""Real emulator processes on real ports, driven by the official `openai` client."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from pickspin.adapters.engine_stats import EngineStats
from pickspin.core.settings import BackendKind
from tests.emulator.launch import wait_ready

from .conftest import Start

pytestmark = pytest.mark.integration

SERVICE, MODEL = "gemma-3-27b-vllm", "gemma-3-27b"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def sync_client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=10)


def test_openai_client_chat_and_completions(start_backend: Start) -> None:
    base = start_backend(SERVICE, cold_start_seconds=0)
    oa = sync_client(base)
    assert [m.id for m in oa.models.list()] == [MODEL]

    chat = oa.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6)
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and chat.usage.completion_tokens == 6
    assert chat.system_fingerprint == "pickspin-emulator-vllm"

    stream = oa.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6,
                                        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and
              c.choices[0].delta.content]
    assert len(pieces) == 6 and chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert "".join(pieces) == chat.choices[0].message.content  # same prompt, same filler

    comp = oa.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4)
    assert comp.usage is not None and comp.usage.completion_tokens == 4
    streamed = list(oa.completions.create(model=MODEL, prompt="Once upon a time",
                                          max_tokens=4, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == comp.choices[0].text

    stats = EngineStats.from_scrape("vllm", httpx.get(f"{base}/metrics").text)
    assert stats.success_count == 4.0 and stats.ttft_count == 4.0


def test_cold_start_503_then_200(start_backend: Start) -> None:
    started = time.monotonic()
    base = start_backend(SERVICE, cold_start_seconds=1.5)
    assert httpx.get(f"{base}/health").status_code == 503
    with pytest.raises(openai.APIStatusError) as info:
        sync_client(base).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    assert info.value.status_code == 503
    assert wait_ready(base, timeout=10)
    assert time.monotonic() - started >= 1.5
    chat = sync_client(base).chat.completions.create(model=MODEL, messages=MESSAGES,
                                                     max_tokens=2)
    assert chat.usage is not None and chat.usage.completion_tokens == 2


def test_error_rate_one_gives_500_envelope(start_backend: Start) -> None:
    base = start_backend(SERVICE, cold_start_seconds=0, error_rate=1.0)
    with pytest.raises(openai.InternalServerError) as info:
        sync_client(base).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert info.value.status_code == 500
    body = httpx.post(f"{base}/v1/completions", json={"model": MODEL, "prompt": "x"}).json()
    assert body["error"]["code"] == "emulated_failure"
    assert httpx.get(f"{base}/health").status_code == 200  # failing, but up


def test_bad_input_gives_400s(start_backend: Start) -> None:
    base = start_backend(SERVICE, cold_start_seconds=0)
    oa = sync_client(base)
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=-1)
    with pytest.raises(openai.BadRequestError):
        oa.completions.create(model=MODEL, prompt=None)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        oa.chat.completions.create(model="no-such-model", messages=MESSAGES)
    raw = httpx.post(f"{base}/v1/chat/completions", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.post(f"{base}/v1/chat/completions", json={"model": MODEL})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"


async def test_queueing_beyond_max_concurrency(start_backend: Start) -> None:
    base = start_backend(SERVICE, cold_start_seconds=0, max_concurrency=2, seed=3)
    oa = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)

    async def ttft() -> float:
        t0 = time.monotonic()
        stream = await oa.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                  max_tokens=20, stream=True)
        first = None
        async for _ in stream:
            first = first or time.monotonic() - t0
        assert first is not None
        return first

    waiting_seen = 0.0

    async def watch(http: httpx.AsyncClient) -> None:
        nonlocal waiting_seen
        while True:
            stats = EngineStats.from_scrape("vllm", (await http.get(f"{base}/metrics")).text)
            waiting_seen = max(waiting_seen, stats.waiting or 0.0)
            await asyncio.sleep(0.02)

    async with oa, httpx.AsyncClient() as http:
        watcher = asyncio.create_task(watch(http))
        ttfts = sorted(await asyncio.gather(*(ttft() for _ in range(4))))
        watcher.cancel()
    assert waiting_seen >= 1.0
    # a queued request gets a slot only when a holder has streamed its other 19 tokens
    # (19 / 45 tok/s = 0.42 s after that holder's first token, itself >= the earliest)
    assert ttfts[2] > ttfts[0] + 0.4


async def test_many_concurrent_streams_are_cheap(start_backend: Start) -> None:
    base = start_backend(SERVICE, cold_start_seconds=0)
    oa = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)

    async def one() -> int:
        stream = await oa.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                  max_tokens=45, stream=True)
        return len([c async for c in stream if c.choices and c.choices[0].delta.content])

    async with oa:
        started = time.monotonic()
        counts = await asyncio.gather(*(one() for _ in range(40)))
        elapsed = time.monotonic() - started
    assert counts == [45] * 40
    # each stream needs ~1.05 s (TTFT + 44 tokens at 45 tok/s); all 40 run side by side
    assert elapsed < 4.0, elapsed


@pytest.mark.parametrize(("service", "kind", "path", "names"), [
    ("llama-3-70b-vllm", BackendKind.VLLM, "/metrics",
     ["vllm:num_requests_running{", "vllm:num_requests_waiting{", "vllm:kv_cache_usage_perc{",
      "vllm:time_to_first_token_seconds_count{", "vllm:e2e_request_latency_seconds_count{",
      "vllm:request_success_total{"]),
    ("llama-3-70b-tgi", BackendKind.TGI, "/metrics",
     ["tgi_queue_size ", "tgi_batch_current_size ", "tgi_request_count ",
      "tgi_request_success ", "tgi_request_duration_count "]),
    ("llama-3-70b-trtllm", BackendKind.TRTLLM, "/prometheus/metrics",
     ["trtllm_time_to_first_token_seconds_count{", "trtllm_e2e_request_latency_seconds_count{",
      "trtllm_kv_cache_utilization{", "trtllm_num_requests_running{",
      "trtllm_num_requests_waiting{", "trtllm_request_success_total{"]),
])
def test_metric_names_per_kind(start_backend: Start, service: str, kind: BackendKind,
                               path: str, names: list[str]) -> None:
    base = start_backend(service, cold_start_seconds=0)
    sync_client(base).chat.completions.create(model="llama-3-70b", messages=MESSAGES,
                                              max_tokens=3)
    text = httpx.get(f"{base}{path}").text
    lines = text.splitlines()
    for name in names:
        assert any(line.startswith(name) for line in lines), name
    stats = EngineStats.from_scrape(kind, text)
    assert stats.success_count == 1.0 and stats.e2e_count == 1.0
    assert (stats.ttft_count is None) == (kind is BackendKind.TGI)
