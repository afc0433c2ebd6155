"""Property-based fuzzing of the gateway's two endpoints and its override headers, against
the real processes: whatever the body or header, the answer is never ≥ 500, never hangs,
and every 4xx carries the OpenAI error envelope. Runs `FUZZ_EXAMPLES` generated cases
(1,000 by default; CI runs them all)."""

from __future__ import annotations

import json
import os
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
ROLES = ["system", "developer", "user", "assistant", "tool", "function", "wizard", ""]
MODELS = ["pickspin/auto", "pickspin/quality", "pickspin/cost", "pickspin/nope",
          "gemma-3-27b", "llama-3-70b", "no-such-model", ""]

# any JSON value, NaN and ±Infinity and lone surrogates included
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.sampled_from(["\ud800", "a\udfffb", "😀", "\x00"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
content = st.one_of(
    st.text(max_size=60), json_values,
    st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", ""]),
                                    "text": st.one_of(st.text(max_size=30), json_values)}),
             max_size=3))
messages = st.lists(st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(ROLES), json_values), "content": content}), max_size=4)
FIELDS = {
    "model": st.one_of(st.sampled_from(MODELS), json_values),
    "messages": st.one_of(messages, json_values),
    "prompt": st.one_of(st.text(max_size=60), st.lists(st.text(max_size=20), max_size=2),
                        json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "max_tokens": st.one_of(st.integers(min_value=-5, max_value=4), json_values),
    "temperature": st.one_of(st.floats(allow_nan=True, allow_infinity=True), json_values),
    "top_p": json_values, "n": json_values, "seed": json_values, "stop": json_values,
    "logit_bias": json_values, "top_k": json_values, "tools": json_values,
    "stream_options": json_values, "user": json_values,
}
bodies = st.fixed_dictionaries({}, optional=FIELDS)
# (values h11 lets a client send: no surrounding whitespace)
header_text = st.text(alphabet=string.printable.strip() + " ", max_size=20).map(str.strip)
headers = st.fixed_dictionaries({}, optional={
    "x-pickspin-profile": st.one_of(st.sampled_from(["quality", "cost", "speed"]),
                                    header_text),
    "x-pickspin-router": st.one_of(st.sampled_from(["keyword", "semantic", "hybrid"]),
                                   header_text),
    "content-type": st.sampled_from(["application/json", "text/plain", ""]),
})
deep = st.integers(min_value=60, max_value=3000).map(
    lambda n: '{"messages": [{"role": "user", "content": "x"}], "x": ' + "[" * n + "]" * n + "}")


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=True).encode()  # NaN, Infinity and \\ud800 as written


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(path=st.sampled_from(["/v1/chat/completions", "/v1/completions"]),
       raw=st.one_of(bodies.map(encode), deep.map(str.encode),
                     st.binary(max_size=64)),
       extra=headers)
def test_no_body_or_header_gets_a_5xx_or_an_answer_outside_the_envelope(gateway_url, path,
                                                                           raw, extra):
    answer = httpx.post(gateway_url + path, content=raw, timeout=30,
                        headers={"content-type": "application/json", **extra})
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str) and error["message"]
