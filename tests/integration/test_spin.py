"""Spin on one machine, with real processes: Prometheus, the local scaler applying the keda
chart's ScaledObjects, emulated backends that start on demand and stop when idle."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from openai import OpenAI

from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up
from tests.conftest import VALUES

pytestmark = pytest.mark.integration

SMALL_A, SMALL_B, LARGE = "gemma-3-27b-vllm", "gemma-3-27b-tgi", "qwen-3-235b-vllm"
COOLDOWN = 4
PROVE = "Prove that there are infinitely many prime numbers"


def spin_values() -> dict:
    """The default values cut down to three services with short cooldowns, so a test can
    watch scale-to-zero: two warm-pool small services and one large one at zero."""
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (SMALL_A, SMALL_B, LARGE),
                             cooldown_seconds=COOLDOWN, warm_pool={"small": 1},
                             max_cold_wait_seconds=30)
    ps = data["global"]["pickspin"]
    for s in ps["services"]:
        s["emulation"].update(ttftMsMedian=30, ttftMsP99=60, tokensPerSecond=100)
        if s["model"] == "qwen-3-235b":
            s.update(concurrency=2, maxReplicas=3)
            s["emulation"].update(coldStartSeconds=1.5, maxConcurrency=2)
        else:
            s["emulation"].update(coldStartSeconds=0.5)
    ps["profiles"]["quality"]["scaling"]["coldStart"] = "hold"
    ps["profiles"]["quality-now"] = {
        "weights": dict(ps["profiles"]["quality"]["weights"]),
        "scaling": {**ps["profiles"]["quality"]["scaling"], "coldStart": "substitute"}}
    ps["routing"]["tradeDown"]["quality-now"] = dict(ps["routing"]["tradeDown"]["quality"])
    return data


@pytest.fixture(scope="module")
def spin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("spin")
    values = Path(state) / "values.yaml"
    values.write_text(yaml.safe_dump(spin_values()))
    running = up(str(values), Path(state) / "run", tick_seconds=0.5, timeout=120, log=False)
    try:
        yield running
    finally:
        down(Path(state) / "run")


def url(stack: Stack, name: str) -> str:
    return next(p.url for p in stack.procs if p.name == name)  # type: ignore[return-value]


def replicas(stack: Stack) -> dict:
    return httpx.get(url(stack, "scaler") + "/replicas", timeout=5).json()


def wait_for(predicate, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def client(stack: Stack) -> OpenAI:
    return OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=60)


def cold_telemetry(stack: Stack) -> bool:
    """The selector knows LARGE is at zero once a snapshot with its replicas has arrived."""
    reply = httpx.post(url(stack, "telemetry"), timeout=10, headers={
        "ce-specversion": "1.0", "ce-id": "t", "ce-source": "/tests",
        "ce-type": "dev.knative.sources.ping", "content-type": "application/json"},
        content=b"{}")
    return reply.json()["services"][LARGE].get("replicas") == 0


def test_only_the_warm_pools_run_at_start(spin):
    now = replicas(spin)
    assert now[SMALL_A]["ready"] == 1 and now[SMALL_B]["ready"] == 1
    assert now[LARGE]["replicas"] == 0


def test_hold_profile_waits_for_the_cold_backend(spin):
    assert wait_for(lambda: cold_telemetry(spin), 10)
    raw = client(spin).chat.completions.with_raw_response.create(
        model="pickspin/quality", max_tokens=4, messages=[{"role": "user", "content": PROVE}])
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-pickspin-service"] == LARGE
    assert raw.headers["x-pickspin-cold-start"] == "true"
    assert raw.headers["x-pickspin-cold-action"] == "hold"
    waited_ms = float(raw.headers["x-pickspin-cold-start-ms"])
    assert waited_ms >= 1500  # at least the emulated load time
    print(f"cold start held for {waited_ms:.0f} ms")


def test_idle_past_the_cooldown_scales_to_zero_but_keeps_the_warm_pool(spin):
    assert wait_for(lambda: replicas(spin)[LARGE]["replicas"] >= 1, 10)
    start = time.monotonic()
    assert wait_for(lambda: replicas(spin)[LARGE]["replicas"] == 0, COOLDOWN + 70)
    idle = time.monotonic() - start
    now = replicas(spin)
    assert now[SMALL_A]["ready"] == 1 and now[SMALL_B]["ready"] == 1
    print(f"{LARGE} scaled to zero {idle:.1f} s after it was last seen busy")


def test_substitute_profile_never_trades_a_cold_large_model_for_a_lower_tier(spin):
    """`substitute` serves a warm model now only from the same or a higher tier (issue 8:
    a selection that cannot make answers worse); here only smaller models are warm, so the
    request waits for the large one, which wakes (the unit tests cover a same-tier swap)."""
    assert wait_for(lambda: cold_telemetry(spin), 10)
    raw = client(spin).chat.completions.with_raw_response.create(
        model="pickspin/quality-now", max_tokens=4, messages=[{"role": "user", "content": PROVE}])
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-pickspin-service"] == LARGE
    assert raw.headers["x-pickspin-cold-action"] != "substitute"
    assert wait_for(lambda: replicas(spin)[LARGE]["ready"] >= 1, 20)


def gateway_successes(stack: Stack, model: str) -> float:
    text = httpx.get(stack.endpoint.removesuffix("/v1") + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("pickspin_requests_total{")
               and f'model="{model}"' in line and 'outcome="success"' in line)


def test_a_burst_scales_by_littles_law_and_no_request_is_lost(spin, settings):
    threshold = 2 * 0.5  # concurrency × targetUtilization in spin_values()
    before = gateway_successes(spin, "qwen-3-235b")
    samples: list[dict] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            samples.append(replicas(spin)[LARGE])
            time.sleep(0.5)

    ids: list[str] = []
    lock = threading.Lock()
    api = client(spin)
    deadline = time.monotonic() + 30

    def worker() -> int:
        sent = 0
        while time.monotonic() < deadline:
            done = api.chat.completions.create(
                model="qwen-3-235b", max_tokens=60,
                messages=[{"role": "user", "content": "Derive Bayes' rule"}])
            with lock:
                ids.append(done.id)
            sent += 1
        return sent

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            sent = sum(pool.map(lambda _: worker(), range(8)))
    finally:
        stop.set()
        watcher.join()
    peak = max(s["replicas"] for s in samples)
    assert peak >= 2, samples
    for s in samples:  # the HPA takes the larger of the two triggers' proposals
        if s["reason"] == "scale-up":
            proposal = max(math.ceil(s["demand"] / threshold), math.ceil(s["pending"] / threshold))
            assert s["replicas"] == min(3, proposal), s
    # every request answered once: as many distinct answers as requests sent, and the
    # gateway counted exactly those
    assert len(ids) == sent == len(set(ids))
    assert wait_for(lambda: gateway_successes(spin, "qwen-3-235b") - before == sent, 5)
    print(f"burst: {sent} requests, peak {peak} replicas of {LARGE}")


def test_a_killed_backend_is_replaced_and_callers_never_see_it(spin):
    api = client(spin)
    errors: list[str] = []
    answered = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                api.chat.completions.create(model="gemma-3-27b", max_tokens=8,
                                            messages=[{"role": "user", "content": "List fruit"}])
                answered += 1
            except Exception as exc:  # any failure a caller would see
                errors.append(repr(exc))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    victim = replicas(spin)[SMALL_A]["pids"][0]
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    recovered = wait_for(lambda: replicas(spin)[SMALL_A]["ready"] == 1
                         and replicas(spin)[SMALL_A]["restarts"] >= 1, 30, every=0.05)
    recovery = time.monotonic() - killed_at
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert recovered
    assert errors == []
    assert answered > 0
    print(f"recovered {recovery:.2f} s after the kill; {answered} requests, 0 errors")
