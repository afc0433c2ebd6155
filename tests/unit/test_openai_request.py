import json

import pytest

from pickspin.apps.gateway.openai_request import parse
from pickspin.core.errors import InvalidRequest


def chat(**fields) -> bytes:
    return json.dumps({"model": "pickspin/auto", **fields}).encode()


def test_prompt_is_the_last_user_text():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "Prove it"}]}]
    assert parse(chat(messages=msgs), "chat").prompt == "Prove it"


@pytest.mark.parametrize(("body", "param"), [
    (b"{nope", None),
    (b"[1, 2]", None),
    (chat(), "messages"),
    (chat(messages=[]), "messages"),
    (chat(messages="hello"), "messages"),
    (chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    (chat(messages=[{"role": "user", "content": 7}]), "messages[0].content"),
    (chat(messages=[{"role": "user", "content": "x"}], max_tokens=-1), "max_tokens"),
    (chat(messages=[{"role": "user", "content": "x"}], max_tokens="9"), "max_tokens"),
    (chat(messages=[{"role": "user", "content": "x"}], stream="yes"), "stream"),
    (chat(messages=[{"role": "user", "content": "x"}], temperature=9), "temperature"),
    (chat(model=3, messages=[{"role": "user", "content": "x"}]), "model"),
])
def test_bad_chat_requests_name_the_field(body, param):
    with pytest.raises(InvalidRequest) as err:
        parse(body, "chat")
    assert err.value.param == param
    assert err.value.status == 400


def test_completion_prompt_forms():
    assert parse(json.dumps({"prompt": "hi"}).encode(), "completion").prompt == "hi"
    assert parse(json.dumps({"prompt": ["hi"]}).encode(), "completion").prompt == "hi"
    for bad in ({"prompt": ""}, {"prompt": 5}, {}, {"prompt": ["a", "b"]}):
        with pytest.raises(InvalidRequest):
            parse(json.dumps(bad).encode(), "completion")


USER = '{"messages": [{"role": "user", "content": "hi"}]'


def body(rest: str) -> str:
    """A chat body with one user message and `rest` (raw JSON text) after it."""
    return USER + ", " + rest + "}"


@pytest.mark.parametrize(("raw", "param", "words"), [
    (body('"seed": NaN'), "seed", "NaN"),
    (body('"logit_bias": {"42": Infinity}'), "logit_bias.42", "Infinity"),
    (body('"stop": ["a", -Infinity]'), "stop[1]", "-Infinity"),
    ('{"messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content",
     "surrogate"),
    (body('"tools": ' + "[" * 100 + "]" * 100), None, "deeper"),
    (body('"x": ' + "[" * 5000 + "]" * 5000), None, "deeper"),
])
def test_values_json_cannot_carry_on_are_a_400_naming_the_field(raw, param, words):
    with pytest.raises(InvalidRequest) as err:
        parse(raw.encode(), "chat")
    assert words in err.value.message
    if param is not None:
        assert err.value.param == param


def test_ordinary_nesting_and_unicode_pass():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}}}}]
    body = {"messages": [{"role": "user", "content": "naïve 😀 ∑"}], "tools": tools}
    assert parse(json.dumps(body).encode(), "chat").prompt == "naïve 😀 ∑"


async def test_a_body_over_the_limit_is_read_only_to_the_limit_then_drained_and_refused():
    from pickspin.apps.gateway.openai_request import read_body
    from pickspin.core.errors import PayloadTooLarge

    read = 0

    async def body(size: int):
        nonlocal read
        for _ in range(size // 100):
            read += 100
            yield b"x" * 100

    assert await read_body(body(100), limit=100) == b"x" * 100
    read = 0
    with pytest.raises(PayloadTooLarge):
        await read_body(body(100_000), limit=100, discard=500)
    assert read == 500  # drained up to the discard bound, not forever
