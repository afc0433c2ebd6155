"""The gateway function's `handle`, driven in-process like func-python does."""

from __future__ import annotations

import json

import pytest

from pickspin.core.errors import ConfigError
from tests.conftest import call, load_function

# nothing listens here: the requests below must be answered before any call goes out
NOWHERE = {"PICKSPIN_CLASSIFIER_URL": "http://127.0.0.1:9", "PICKSPIN_SELECTOR_URL":
           "http://127.0.0.1:9"}


async def chat(fn, body: bytes | dict, **headers: str):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await call(fn, "POST", "/v1/chat/completions",
                      {"content-type": "application/json", **headers}, raw)


async def test_models_are_listed_without_any_backend(start_function, settings):
    reply = await call(start_function("gateway", NOWHERE), "GET", "/v1/models")
    assert reply.status == 200
    ids = {m["id"] for m in reply.json()["data"]}
    assert {"pickspin/auto", *(f"pickspin/{p}" for p in settings.profiles)} <= ids
    assert {m.name for m in settings.models} <= ids


@pytest.mark.parametrize(("body", "headers", "status", "param"), [
    (b"{not json", {}, 400, None),
    ({"model": "pickspin/auto"}, {}, 400, "messages"),
    ({"model": "pickspin/auto", "messages": []}, {}, 400, "messages"),
    ({"model": "pickspin/auto", "messages": [{"role": "user", "content": "x"}],
      "max_tokens": -1}, {}, 400, "max_tokens"),
    ({"model": "gpt-17", "messages": [{"role": "user", "content": "x"}]}, {}, 404, "model"),
    ({"messages": [{"role": "user", "content": "x"}]}, {"x-pickspin-router": "tea-leaves"},
     400, "x-pickspin-router"),
], ids=["malformed", "no-messages", "empty-messages", "negative-max-tokens", "unknown-model",
        "unknown-router"])
async def test_bad_requests_get_the_openai_envelope(start_function, body, headers, status,
                                                    param):
    fn = start_function("gateway", NOWHERE)
    reply = await chat(fn, body, **headers)
    assert reply.status == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param


async def test_an_unreachable_classifier_is_a_502_envelope_not_a_crash(start_function):
    fn = start_function("gateway", NOWHERE)
    reply = await chat(fn, {"messages": [{"role": "user", "content": "Define x"}]})
    assert reply.status == 502
    assert reply.json()["error"]["code"] == "function_failed"
    assert fn.ready()[0]


def test_start_fails_with_a_clear_message_without_its_collaborators(settings):
    fn = load_function("gateway").GatewayFunction(settings)
    with pytest.raises(ConfigError, match="PICKSPIN_CLASSIFIER_URL must be set"):
        fn.start({})


async def test_past_its_inflight_limit_the_gateway_pushes_back_with_429(start_function):
    fn = start_function("gateway", {**NOWHERE, "PICKSPIN_MAX_INFLIGHT": "1"})
    fn.gateway._enter()  # one request in flight
    try:
        reply = await chat(fn, {"messages": [{"role": "user", "content": "Define x"}]})
        assert reply.status == 429 and reply.headers["retry-after"] == "1"
        assert reply.json()["error"]["code"] == "too_many_requests"
        assert (await call(fn, "GET", "/v1/models")).status == 200  # reads still answered
    finally:
        fn.gateway._leave()
    reply = await chat(fn, {"messages": [{"role": "user", "content": "Define x"}]})
    assert reply.status == 502  # under the limit again: on to the (unreachable) classifier


async def test_an_api_key_is_required_when_keys_are_configured(start_function):
    fn = start_function("gateway", {**NOWHERE, "PICKSPIN_API_KEYS": "k1,k2"})
    body = {"messages": [{"role": "user", "content": "Define x"}]}
    assert (await chat(fn, body)).status == 401
    assert (await chat(fn, body, authorization="Bearer k3")).status == 401
    assert (await chat(fn, body, authorization="Bearer k2")).status == 502  # let in
