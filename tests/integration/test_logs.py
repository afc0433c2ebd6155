"""The gateway's log people can use: one JSON line per request with what happened (never the
prompt or the answer), every 4xx/5xx with its reason, no internal URL shown to clients."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pickspin.local.stack import Stack
from tests.integration.conftest import log_of

pytestmark = pytest.mark.integration

MARKER = "zebra-quartz-7f3a91"  # appears in prompts only


def lines(stack: Stack, request_id: str) -> list[dict]:
    found = []
    for line in log_of(stack, "gateway").splitlines():
        if line.startswith("{") and request_id in line:
            found.append(json.loads(line))
    return found


def test_an_answered_request_gets_one_json_line_with_its_decision(stack, gateway_url):
    rid = "req-log-answered-1"
    answer = httpx.post(f"{gateway_url}/v1/chat/completions", timeout=30,
                        headers={"x-request-id": rid},
                        json={"model": "pickspin/auto", "max_tokens": 4, "messages": [
                            {"role": "user", "content": f"Define {MARKER} briefly"}]})
    assert answer.status_code == 200
    [line] = lines(stack, rid)
    assert line["event"] == "request" and line["status"] == 200
    assert line["outcome"] == "success"
    assert line["model"] == answer.headers["x-pickspin-model"]
    assert line["service"] == answer.headers["x-pickspin-service"]
    assert line["cold_action"] == answer.headers["x-pickspin-cold-action"]
    assert {"decision_ms", "latency_ms", "router", "complexity"} <= set(line)


def test_errors_are_logged_with_their_reason(stack, gateway_url):
    rid = "req-log-error-1"
    answer = httpx.post(f"{gateway_url}/v1/chat/completions", timeout=30,
                        headers={"x-request-id": rid},
                        json={"model": "no-such-model", "messages": [
                            {"role": "user", "content": MARKER}]})
    assert answer.status_code == 404
    [line] = lines(stack, rid)
    assert line["status"] == 404 and line["code"] == "model_not_found"
    assert "no-such-model" in line["reason"]


def test_no_prompt_or_answer_text_reaches_any_log(stack, gateway_url):
    httpx.post(f"{gateway_url}/v1/completions", timeout=30,
               json={"model": "pickspin/auto", "max_tokens": 4, "prompt": f"Say {MARKER}"})
    logs = Path(next(p for p in stack.procs if p.name == "gateway").log).parent
    for log in logs.glob("*.log"):
        assert MARKER not in log.read_text(errors="replace"), f"{log.name} holds a prompt"
