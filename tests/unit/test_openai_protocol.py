"""One definition of the OpenAI request bodies: the gateway and the emulated backends judge
a body the same way, name the same field, and pass unknown fields on."""

from __future__ import annotations

import json

import pytest

from pickspin.apps.gateway.openai_request import parse
from pickspin.core.errors import InvalidRequest
from pickspin.core.openai_protocol import ChatRequest
from pickspin.emulator.openai_format import Endpoint, parse_request

MODEL = "gemma-3-27b"
USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
     "messages[0].content[0].text"),
    ({"messages": USER, "temperature": 2.5}, "temperature"),
    ({"messages": USER, "top_p": True}, "top_p"),
    ({"messages": USER, "n": 3}, "n"),
    ({"messages": USER, "max_tokens": 0}, "max_tokens"),
    ({"messages": USER, "stream": "yes"}, "stream"),
])
def test_the_gateway_and_the_emulator_refuse_the_same_body_naming_the_same_field(body, param):
    raw = json.dumps({"model": MODEL, **body}).encode()
    with pytest.raises(InvalidRequest) as gateway:
        parse(raw, "chat")
    with pytest.raises(InvalidRequest) as emulator:
        parse_request(Endpoint.CHAT, raw, served_model=MODEL, default_max_tokens=8,
                      max_model_len=4096)
    assert gateway.value.param == emulator.value.param == param
    assert gateway.value.status == emulator.value.status == 400


def test_unknown_fields_are_kept_and_every_problem_is_listed():
    request = ChatRequest.read({"messages": USER, "tools": [{"type": "function"}], "seed": 1})
    assert request.model_extra == {"tools": [{"type": "function"}], "seed": 1}
    with pytest.raises(InvalidRequest) as err:
        ChatRequest.read({"messages": [{"role": "x", "content": "y"}], "max_tokens": -1})
    assert "max_tokens" in err.value.message and "messages[0].role" in err.value.message
