"""A backend process that dies while answering is reported as the crash it is (its signal),
by the gateway's error and log and by `pickspin status`, not as a protocol error; the local
scaler replaces it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from pickspin.cli import main as cli
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up
from pickspin.local.status import services
from tests.conftest import VALUES
from tests.integration.conftest import log_of

pytestmark = pytest.mark.integration

CRASHING = "gemma-3-27b-vllm"  # dies before its first token
MID_STREAM = "llama-3-70b-vllm"  # dies after three streamed tokens


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One emulated service whose engine segfaults before its first token (fault injection
    `crashAfterTokens: 0`), kept warm by the scaler."""
    state = tmp_path_factory.mktemp("crash")
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (CRASHING, MID_STREAM),
                             warm_pool={"small": 1, "medium": 1})
    for svc in data["global"]["pickspin"]["services"]:
        svc["emulation"].update(crashAfterTokens=0 if svc["model"] == "gemma-3-27b" else 3,
                                ttftMsMedian=20, ttftMsP99=40)
    values = Path(state) / "values.yaml"
    values.write_text(yaml.safe_dump(data))
    running = up(str(values), Path(state) / "run", tick_seconds=0.5, timeout=120, log=False)
    try:
        yield running
    finally:
        down(Path(state) / "run")


def test_a_backend_killed_by_a_signal_while_answering_is_reported_as_a_crash(stack, capsys):
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="gemma-3-27b", max_tokens=4,
                                       messages=[{"role": "user", "content": "Name a fruit"}])
    assert failed.value.status_code == 502
    message = failed.value.body["message"]  # type: ignore[index]
    assert f"{CRASHING}=crashed: killed by SIGSEGV" in message
    assert "RemoteProtocolError" not in message
    assert "crashed while answering: killed by SIGSEGV" in log_of(stack, "gateway")

    state = services(stack.state_dir)[CRASHING]
    assert state["restarts"] >= 1
    assert state["last_crash"]["signal"] == "SIGSEGV"  # type: ignore[index]
    # and `pickspin status` prints it
    assert cli(["status", "--state-dir", str(stack.state_dir)]) == 0
    out = capsys.readouterr().out
    assert "killed by SIGSEGV" in out and CRASHING in out


def test_the_crashed_replica_is_replaced(stack):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = services(stack.state_dir)[CRASHING]
        if state["ready"] == 1:
            break
        time.sleep(0.2)
    assert state["ready"] == 1 and state["restarts"] >= 1


def test_a_stream_cut_by_a_crash_ends_with_an_error_event_not_done(stack):
    raw = httpx.post(f"{stack.endpoint}/chat/completions", timeout=60, json={
        "model": "llama-3-70b", "stream": True, "max_tokens": 20,
        "messages": [{"role": "user", "content": "Count to twenty"}]})
    events = [line.removeprefix("data: ") for line in raw.text.splitlines()
              if line.startswith("data: ")]
    assert raw.status_code == 200
    assert "[DONE]" not in events
    tokens = [json.loads(e) for e in events[:-1]]
    assert len(tokens) == 3 and all("choices" in t for t in tokens)
    error = json.loads(events[-1])["error"]
    assert error["code"] == "stream_interrupted"
    assert "crashed: killed by SIGSEGV" in error["message"]
    # the official client raises instead of returning a silently truncated answer
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=60)
    deadline = time.monotonic() + 30
    while services(stack.state_dir)[MID_STREAM]["ready"] != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
                model="llama-3-70b", stream=True, max_tokens=20,
                messages=[{"role": "user", "content": "Count to twenty"}]):
            pass
    metrics = httpx.get(stack.endpoint.removesuffix("/v1") + "/metrics", timeout=10).text
    errors = [line for line in metrics.splitlines() if line.startswith(
        'pickspin_requests_total{backend="vllm",model="llama-3-70b",outcome="error"}')]
    assert errors and float(errors[0].split()[-1]) >= 2
    assert "broke off after 3 events" in log_of(stack, "gateway")
