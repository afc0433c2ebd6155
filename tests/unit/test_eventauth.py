"""The signature on the wire: a binary-mode body is exactly the bytes the signature covers,
and the proof holds for a receiver that decodes the body (func's middleware) or re-encodes
the event on the way (a broker), while any change to the data is refused."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event

from pickspin.core.errors import Unauthorized
from pickspin.core.eventauth import Signer, canonical_data
from pickspin.core.events import EventType, decode, make_event

DATA = {"request_id": "r1", "probabilities": {"medium": 0.6, "low": 0.2, "high": 0.2},
        "complexity": "medium", "router": "keyword", "elapsed_ms": 1e-7, "note": "café ✓"}


def signer() -> Signer:
    return Signer("s3cret", clock=lambda: 1000.0)


def test_binary_body_is_the_signed_canonical_bytes_and_verifies_after_decoding():
    message = signer().encode(make_event(EventType.PROMPT_CLASSIFIED, DATA, "/tests"))
    assert message.body == canonical_data(DATA)
    received = decode(message.headers, message.body)
    assert received.get_data() == DATA
    signer().verify(received)


def test_the_proof_survives_re_encoding_by_a_hop():
    message = signer().encode(make_event(EventType.PROMPT_CLASSIFIED, DATA, "/tests"))
    hop = decode(message.headers, message.body)
    for again in (to_binary_event(hop), to_structured_event(hop)):
        signer().verify(decode(again.headers, again.body))


def test_a_changed_body_is_refused():
    message = signer().encode(make_event(EventType.PROMPT_CLASSIFIED, DATA, "/tests"))
    forged = json.loads(message.body)
    forged["complexity"] = "high"
    with pytest.raises(Unauthorized):
        signer().verify(decode(message.headers, json.dumps(forged).encode()))


def test_wire_and_plain_signatures_agree():
    event = make_event(EventType.PROMPT_CLASSIFIED, DATA, "/tests")
    plain, wire = signer().sign(event), signer().sign(event, wire=True)
    assert plain.get_data() == DATA and wire.get_data() == canonical_data(DATA)
    assert plain.get_attributes() == wire.get_attributes()


def test_without_a_token_the_event_is_encoded_unsigned():
    event = make_event(EventType.PROMPT_CLASSIFIED, DATA, "/tests")
    message = Signer(None).encode(event)
    assert not any(k.startswith("ce-pickspinsig") for k in message.headers)
    assert json.loads(message.body) == DATA
