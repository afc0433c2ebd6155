"""Request validation (400s for bad input) and the OpenAI response shapes."""

from __future__ import annotations

import json

import pytest

from pickspin.core.errors import InvalidRequest, ModelNotFound
from pickspin.emulator.openai_format import (
    Endpoint,
    full_response,
    parse_request,
    sse,
    stream_chunk,
    usage_chunk,
)

MODEL = "gemma-3-27b"


def parse(endpoint: Endpoint, body: object | bytes):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_request(endpoint, raw, served_model=MODEL, default_max_tokens=64,
                         max_model_len=4096)


CHAT_OK = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("endpoint", "body", "param"), [
    (Endpoint.CHAT, b"{not json", None),
    (Endpoint.CHAT, b"\xff\xfe", None),
    (Endpoint.CHAT, [1, 2], None),
    (Endpoint.CHAT, {"model": MODEL}, "messages"),
    (Endpoint.CHAT, {"model": MODEL, "messages": []}, "messages"),
    (Endpoint.CHAT, {"model": MODEL, "messages": "hi"}, "messages"),
    (Endpoint.CHAT, {"model": MODEL, "messages": ["hi"]}, "messages[0]"),
    (Endpoint.CHAT, {"model": MODEL, "messages": [{"content": "hi"}]}, "messages[0].role"),
    (Endpoint.CHAT, {"model": MODEL, "messages": [{"role": "user", "content": 5}]},
     "messages[0].content"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": -1}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": 0}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": "10"}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": 1.5}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": True}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_tokens": 10**9}, "max_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "max_completion_tokens": -5}, "max_completion_tokens"),
    (Endpoint.CHAT, {**CHAT_OK, "stream": "yes"}, "stream"),
    (Endpoint.CHAT, {**CHAT_OK, "stream_options": 3}, "stream_options"),
    (Endpoint.CHAT, {**CHAT_OK, "n": 2}, "n"),
    (Endpoint.CHAT, {**CHAT_OK, "model": 7}, "model"),
    (Endpoint.COMPLETION, {"model": MODEL}, "prompt"),
    (Endpoint.COMPLETION, {"model": MODEL, "prompt": 12}, "prompt"),
    (Endpoint.COMPLETION, {"model": MODEL, "prompt": []}, "prompt"),
    (Endpoint.COMPLETION, {"model": MODEL, "prompt": ["a", 1]}, "prompt"),
])
def test_bad_input_is_a_400_naming_the_parameter(endpoint: Endpoint, body: object,
                                                 param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(endpoint, body)
    assert info.value.status == 400
    assert info.value.param == param
    assert info.value.envelope()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_a_404() -> None:
    with pytest.raises(ModelNotFound) as info:
        parse(Endpoint.CHAT, {**CHAT_OK, "model": "gpt-4"})
    assert info.value.status == 404


def test_defaults_and_limits() -> None:
    req = parse(Endpoint.CHAT, CHAT_OK)
    assert (req.max_tokens, req.finish_reason, req.stream) == (64, "stop", False)
    req = parse(Endpoint.CHAT, {**CHAT_OK, "max_completion_tokens": 7, "stream": True})
    assert (req.max_tokens, req.finish_reason, req.stream) == (7, "length", True)
    req = parse(Endpoint.COMPLETION, {"model": MODEL, "prompt": ["a", "b"], "max_tokens": 3})
    assert (req.max_tokens, req.prompt_text) == (3, "a\nb")
    assert parse(Endpoint.COMPLETION, {"prompt": [1, 2, 3]}).model == MODEL


def test_chat_content_parts_are_read() -> None:
    body = {**CHAT_OK, "messages": [{"role": "user",
                                     "content": [{"type": "text", "text": "hello"}]}]}
    assert parse(Endpoint.CHAT, body).prompt_text == "hello"


def test_chat_chunk_and_full_response_shapes() -> None:
    req = parse(Endpoint.CHAT, {**CHAT_OK, "max_tokens": 2, "stream": True,
                                "stream_options": {"include_usage": True}})
    first = stream_chunk(req, "id", 1, "fp", text="a", first=True)
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "a"}
    last = stream_chunk(req, "id", 1, "fp", text=None, finish_reason="length")
    assert last["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                  "finish_reason": "length"}
    assert usage_chunk(req, "id", 1, "fp", 2)["usage"]["completion_tokens"] == 2
    full = full_response(req, "id", 1, "fp", ["a", " b"])
    assert full["object"] == "chat.completion"
    assert full["choices"][0]["message"] == {"role": "assistant", "content": "a b"}
    assert full["usage"]["total_tokens"] == full["usage"]["prompt_tokens"] + 2


def test_completion_shapes_and_sse_framing() -> None:
    req = parse(Endpoint.COMPLETION, {"prompt": "x", "max_tokens": 1})
    chunk = stream_chunk(req, "id", 1, "fp", text="w")
    assert chunk["object"] == "text_completion" and chunk["choices"][0]["text"] == "w"
    assert sse("[DONE]") == b"data: [DONE]\n\n"
    assert json.loads(sse(chunk)[len(b"data: "):]) == chunk
