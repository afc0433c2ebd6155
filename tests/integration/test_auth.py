"""Nobody let in: API keys on the OpenAI endpoints, and internal events that only holders of
the run's token can send — a forged telemetry snapshot is refused and changes no route."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from pickspin.core.eventauth import Signer
from pickspin.core.events import EventType, encode, make_event
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up
from tests.conftest import VALUES

pytestmark = pytest.mark.integration

KEY = "sk-pickspin-test-key-1"
SMALL, MEDIUM = "gemma-3-27b-vllm", "llama-3-70b-vllm"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("auth")
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (SMALL, MEDIUM),
                             warm_pool={"small": 1, "medium": 1})
    values = Path(state) / "values.yaml"
    values.write_text(yaml.safe_dump(data))
    os.environ["PICKSPIN_API_KEYS"] = f"other-key, {KEY}"
    try:
        running = up(str(values), Path(state) / "run", tick_seconds=0.5, timeout=120,
                     log=False)
    finally:
        del os.environ["PICKSPIN_API_KEYS"]
    try:
        yield running
    finally:
        down(Path(state) / "run")


def url(stack: Stack, name: str) -> str:
    return str(next(p.url for p in stack.procs if p.name == name))


def test_a_key_is_required_and_checked(stack):
    chat = f"{stack.endpoint}/chat/completions"
    body = {"model": "pickspin/auto", "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}]}
    missing = httpx.post(chat, json=body, timeout=30)
    assert missing.status_code == 401
    assert "didn't provide an API key" in missing.json()["error"]["message"]
    wrong = httpx.post(chat, json=body, timeout=30, headers={"authorization": "Bearer nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert "nope-nope" not in wrong.text  # the key is not echoed whole
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=stack.endpoint, api_key="wrong", max_retries=0).models.list()
    client = OpenAI(base_url=stack.endpoint, api_key=KEY, max_retries=0, timeout=30)
    assert client.chat.completions.create(**body).choices[0].message.content
    assert any(m.id == "pickspin/auto" for m in client.models.list())


def forged_snapshot() -> dict:
    """Every service unhealthy but the small one, and a timestamp far in the future."""
    bad = {"healthy": False, "latency_seconds": 99.0}
    return {"generated_at": 1e12, "window_seconds": 60, "services": {
        MEDIUM: bad, SMALL: {"healthy": True, "latency_seconds": 0.001}}}


def route_of(stack: Stack) -> str:
    client = OpenAI(base_url=stack.endpoint, api_key=KEY, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model="llama-3-70b", max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    return raw.headers["x-pickspin-service"]


@pytest.mark.parametrize("signer", [None, Signer("a-token-of-our-own")],
                         ids=["unsigned", "wrong-token"])
def test_a_forged_snapshot_is_refused_and_routing_is_unchanged(stack, signer):
    assert route_of(stack) == MEDIUM
    event = make_event(EventType.TELEMETRY_SNAPSHOT, forged_snapshot(), "/attacker")
    if signer is not None:
        event = signer.sign(event)
    for mode in ("binary", "structured"):
        message = encode(event, mode)  # type: ignore[arg-type]
        answer = httpx.post(url(stack, "selector"), content=message.body,
                            headers=message.headers, timeout=10)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "invalid_api_key"
    time.sleep(1.0)  # a tick later, still routed on real telemetry
    assert route_of(stack) == MEDIUM


def test_internal_events_from_outside_are_refused_at_every_function(stack):
    taken = {"classifier": EventType.PROMPT_RECEIVED, "selector": EventType.PROMPT_CLASSIFIED,
             "telemetry": EventType.INFERENCE_COMPLETED}
    for name, type_ in taken.items():
        message = encode(make_event(type_, {}, "/attacker"))
        answer = httpx.post(url(stack, name), content=message.body, headers=message.headers,
                            timeout=10)
        assert answer.status_code == 401, (name, answer.text)
        assert json.loads(answer.text)["error"]["type"] == "invalid_request_error"
