"""Bad input gets a clear 4xx (the OpenAI envelope at the gateway, 400 at the functions),
never a 5xx, and the processes keep serving. One test per case."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.integration.conftest import post_json, url_of

pytestmark = pytest.mark.integration

USER = [{"role": "user", "content": "Define entropy"}]


@pytest.fixture
def gateway_chat(gateway_url):
    return gateway_url + "/v1/chat/completions"


def assert_envelope(reply: httpx.Response, status: int, param: str | None = None) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.fixture(autouse=True)
def still_serving(client):
    yield
    ok = client.chat.completions.create(model="pickspin/auto", messages=USER, max_tokens=2)
    assert ok.choices[0].message.content


def test_malformed_json(gateway_chat):
    error = assert_envelope(post_json(gateway_chat, '{"model": "pickspin/auto", "messages": ['),
                            400)
    assert "not valid JSON" in error["message"]


def test_body_not_an_object(gateway_chat):
    assert_envelope(post_json(gateway_chat, "[1, 2, 3]"), 400)


def test_missing_messages(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="pickspin/auto", messages=None)  # type: ignore[arg-type]
    assert err.value.status_code == 400
    assert err.value.body["param"] == "messages"


def test_empty_messages(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="pickspin/auto", messages=[])
    assert err.value.body["param"] == "messages"


def test_messages_of_the_wrong_type(gateway_chat):
    body = json.dumps({"model": "pickspin/auto", "messages": "Define entropy"})
    assert_envelope(post_json(gateway_chat, body), 400, "messages")


def test_content_of_the_wrong_type(gateway_chat):
    body = json.dumps({"model": "pickspin/auto", "messages": [{"role": "user", "content": 12}]})
    assert_envelope(post_json(gateway_chat, body), 400, "messages[0].content")


def test_max_tokens_of_the_wrong_type(gateway_chat):
    body = json.dumps({"model": "pickspin/auto", "messages": USER, "max_tokens": "ten"})
    assert_envelope(post_json(gateway_chat, body), 400, "max_tokens")


def test_negative_max_tokens(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="pickspin/auto", messages=USER, max_tokens=-5)
    assert err.value.body["param"] == "max_tokens"


def test_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-17", messages=USER)
    assert err.value.status_code == 404
    assert err.value.body["code"] == "model_not_found"


def test_unknown_profile_model(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="pickspin/thrifty", messages=USER)


def test_unknown_profile_header(gateway_chat):
    body = json.dumps({"model": "pickspin/auto", "messages": USER})
    reply = post_json(gateway_chat, body, **{"x-pickspin-profile": "thrifty"})
    assert_envelope(reply, 400, "x-pickspin-profile")


def test_unknown_router_header(gateway_chat):
    body = json.dumps({"model": "pickspin/auto", "messages": USER})
    reply = post_json(gateway_chat, body, **{"x-pickspin-router": "psychic"})
    assert_envelope(reply, 400, "x-pickspin-router")


def test_empty_completion_prompt(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="pickspin/auto", prompt="")
    assert err.value.body["param"] == "prompt"


def test_wrong_method_and_path(gateway_url):
    assert_envelope(httpx.get(gateway_url + "/v1/chat/completions", timeout=10), 405)
    assert_envelope(httpx.post(gateway_url + "/v2/whatever", timeout=10), 404)


@pytest.mark.parametrize("function", ["classifier", "selector", "telemetry"])
def test_invalid_cloudevent_gets_400_from_each_function(stack, function):
    url = url_of(stack, function)
    missing_type = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/tests",
                    "content-type": "application/json"}
    for headers, body in ((missing_type, b"{}"),
                          ({"content-type": "application/json"}, b'{"hello": 1}'),
                          ({"content-type": "application/cloudevents+json"}, b"\xff\xfe")):
        reply = httpx.post(url, content=body, headers=headers, timeout=10)
        assert reply.status_code == 400, reply.text
        assert "expects CloudEvent" in reply.text  # func_python.cloudevent's answer
    ready = httpx.get(url + "/health/readiness", timeout=10)
    assert ready.status_code == 200


def test_non_utf8_body(gateway_chat):
    assert_envelope(post_json(gateway_chat, b'{"messages": "\xff\xfe\xfd"}'), 400)


def test_body_over_the_size_limit(gateway_chat):
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]})
    assert_envelope(post_json(gateway_chat, huge), 413)


def test_bad_requests_do_not_disturb_answers_in_flight(client, gateway_chat):
    """A long stream runs while a burst of malformed requests hits the same gateway."""
    import threading

    pieces: list[str] = []

    def stream() -> None:
        for chunk in client.chat.completions.create(
                model="pickspin/auto", stream=True, max_tokens=40,
                messages=[{"role": "user", "content": "Write a story about a lighthouse"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)

    worker = threading.Thread(target=stream)
    worker.start()
    for body in ('{"messages": [', "[]", '{"messages": []}', '{"max_tokens": -3}') * 5:
        assert post_json(gateway_chat, body).status_code == 400
    worker.join(timeout=60)
    assert len(pieces) == 40  # every token of the answer in flight arrived
