import json

import pytest

from pickspin.errors import InvalidRequest
from pickspin.gateway.openai_request import parse


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


USER = '{"role": "user", "content": "hi"}'


@pytest.mark.parametrize(("raw", "param", "words"), [
    ('{"messages": [%s], "seed": NaN}' % USER, "seed", "NaN"),
    ('{"messages": [%s], "logit_bias": {"42": Infinity}}' % USER, "logit_bias.42",
     "Infinity"),
    ('{"messages": [%s], "stop": ["a", -Infinity]}' % USER, "stop[1]", "-Infinity"),
    ('{"messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages[0].content",
     "surrogate"),
    ('{"messages": [%s], "tools": %s}' % (USER, "[" * 100 + "]" * 100), None, "deeper"),
    ('{"messages": [%s], "x": %s}' % (USER, "[" * 5000 + "]" * 5000), None, "deeper"),
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
