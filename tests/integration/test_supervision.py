"""Nothing stays dead: every process `pickspin up` starts is restarted (same port, back
within seconds) and shown with its restart count; `pickspin down` stops everything, the
scaler's replicas included, even after the supervisor and the scaler were killed."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from openai import OpenAI

from pickspin.local.demo import quick_spin_values
from pickspin.local.processes import pid_alive
from pickspin.local.stack import Stack, down, up
from pickspin.local.status import services, status
from tests.conftest import VALUES

pytestmark = pytest.mark.integration

SERVICE = "gemma-3-27b-vllm"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (SERVICE,),
                             warm_pool={"small": 1})
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(data))
    running = up(str(values), tmp_path / "run", tick_seconds=0.5, timeout=120, log=False)
    try:
        yield running
    finally:
        down(tmp_path / "run")


def proc(stack: Stack, name: str):
    return next(p for p in stack.procs if p.name == name)


def ask(stack: Stack) -> str:
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=30)
    answer = client.chat.completions.create(
        model="pickspin/auto", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    return answer.choices[0].message.content or ""


def back_within(stack: Stack, name: str, old_pid: int, seconds: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        p = proc(stack, name)
        if p.pid and p.pid != old_pid and p.url and p.health:
            try:
                if httpx.get(p.url + p.health, timeout=0.5).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    return None


def test_a_killed_function_comes_back_on_its_port_and_status_counts_it(stack):
    assert ask(stack)
    for name in ("classifier", "selector", "gateway"):
        victim = proc(stack, name)
        os.kill(victim.pid, signal.SIGKILL)
        took = back_within(stack, name, victim.pid, 5.0)
        assert took is not None, f"{name} not back within 5 s"
        assert proc(stack, name).url == victim.url
        print(f"{name} back in {took:.2f} s")
    rows = {r["name"]: r for r in status(stack.state_dir)}
    assert rows["classifier"]["restarts"] == 1
    assert rows["classifier"]["last_exit"] == "killed by SIGKILL"
    assert ask(stack)


def test_a_request_made_while_the_gateway_is_dead_waits_for_its_restart_not_refused(stack):
    """The supervisor holds the gateway's entry socket: with the only replica dead, a new
    connection still completes and its request is answered by the restarted one."""
    victim = proc(stack, "gateway")
    os.kill(victim.pid, signal.SIGKILL)
    while pid_alive(victim.pid):
        time.sleep(0.01)
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=30)
    answer = client.chat.completions.create(
        model="pickspin/auto", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content
    assert proc(stack, "gateway").pid != victim.pid


def test_a_killed_scaler_comes_back_and_adopts_the_replicas_it_left(stack):
    before = services(stack.state_dir)[SERVICE]["pids"]
    victim = proc(stack, "scaler")
    os.kill(victim.pid, signal.SIGKILL)
    assert back_within(stack, "scaler", victim.pid, 5.0) is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and services(stack.state_dir).get(
            SERVICE, {}).get("ready") != 1:
        time.sleep(0.1)
    assert services(stack.state_dir)[SERVICE]["ready"] == 1
    # the warm replica kept running and is served again: no cold start for the restart
    assert services(stack.state_dir)[SERVICE]["pids"] == before
    assert ask(stack)


def test_down_stops_everything_even_after_the_supervisor_and_scaler_were_killed(stack):
    pids = [p.pid for p in stack.procs] + list(services(stack.state_dir)[SERVICE]["pids"])
    os.kill(stack.supervisor.pid, signal.SIGKILL)
    os.kill(proc(stack, "scaler").pid, signal.SIGKILL)
    down(stack.state_dir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(int(p)) for p in pids):
        time.sleep(0.1)
    assert [p for p in pids if pid_alive(int(p))] == []


def test_down_drains_a_stream_in_flight_and_refuses_new_requests_meanwhile(stack):
    url = f"{stack.endpoint}/chat/completions"
    body = {"model": "gemma-3-27b", "stream": True, "max_tokens": 250,  # ~5 s of tokens
            "messages": [{"role": "user", "content": "Tell a long story"}]}
    streamed: dict[str, str] = {}

    def stream() -> None:
        streamed["text"] = httpx.post(url, json=body, timeout=60).text

    reader = threading.Thread(target=stream)
    reader.start()
    time.sleep(1.0)  # tokens are flowing
    stopper = threading.Thread(target=down, args=(stack.state_dir,))
    started = time.monotonic()
    stopper.start()
    refused = None
    while refused is None and time.monotonic() - started < 3:
        answer = httpx.post(url, json={**body, "stream": False, "max_tokens": 2}, timeout=10)
        if answer.status_code == 503:
            refused = answer
        time.sleep(0.1)
    reader.join(timeout=60)
    stopper.join(timeout=120)
    assert refused is not None, "no request was refused while draining"
    assert refused.json()["error"]["code"] == "draining"
    assert refused.headers["retry-after"] == "1"
    assert streamed["text"].rstrip().endswith("data: [DONE]")  # the stream was not cut
    assert streamed["text"].count("data: ") > 200
    assert not stack.supervisor.alive()
