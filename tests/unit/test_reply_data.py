"""The gateway reads a reply's data straight from a binary-mode body, and gets exactly what
the CloudEvents binding would have given it, errors included."""

from __future__ import annotations

import pytest
from cloudevents.core.bindings.http import to_structured_event

from pickspin.adapters.cehttp import reply_data, reply_event
from pickspin.core.errors import InvalidEvent, RelayedError, UpstreamError
from pickspin.core.eventauth import Signer
from pickspin.core.events import (
    EventType,
    PromptClassified,
    RouteRequest,
    RouteSelected,
    data_of,
    make_event,
)

CLASSIFIED = PromptClassified(request_id="r1", complexity="high",
                              probabilities={"low": 0.1, "medium": 0.2, "high": 0.7},
                              router="hybrid", elapsed_ms=4.2, route=RouteRequest(),
                              success={"small": 0.2, "medium": 0.5, "large": 0.8})


def _binary(data, type_=EventType.PROMPT_CLASSIFIED) -> tuple[dict[str, str], bytes]:
    message = Signer("t" * 32).encode(make_event(type_, data, "/pickspin/classifier"))
    return dict(message.headers), message.body


def test_a_binary_reply_gives_the_data_the_binding_gives():
    headers, body = _binary(CLASSIFIED)
    fast = reply_data("u", 200, headers, body, EventType.PROMPT_CLASSIFIED, PromptClassified)
    slow = data_of(reply_event("u", 200, headers, body, EventType.PROMPT_CLASSIFIED),
                   PromptClassified)
    assert fast == slow == CLASSIFIED


def test_a_structured_reply_is_still_read():
    message = to_structured_event(make_event(EventType.PROMPT_CLASSIFIED, CLASSIFIED, "/c"))
    got = reply_data("u", 200, dict(message.headers), message.body,
                     EventType.PROMPT_CLASSIFIED, PromptClassified)
    assert got == CLASSIFIED


def test_a_reply_of_another_type_is_an_upstream_error():
    headers, body = _binary(CLASSIFIED)
    with pytest.raises(UpstreamError, match="expected"):
        reply_data("u", 200, headers, body, EventType.ROUTE_SELECTED, RouteSelected)


def test_invalid_data_fails_as_it_did_through_the_binding():
    headers, _ = _binary(CLASSIFIED)
    for body in (b'{"request_id": "r1"}', b"not json"):
        with pytest.raises(InvalidEvent) as fast:
            reply_data("u", 200, headers, body, EventType.PROMPT_CLASSIFIED, PromptClassified)
        with pytest.raises(InvalidEvent) as slow:
            data_of(reply_event("u", 200, headers, body, EventType.PROMPT_CLASSIFIED),
                    PromptClassified)
        assert fast.value.message == slow.value.message


def test_an_error_answer_is_relayed_with_its_status():
    body = b'{"error": {"message": "no", "type": "invalid_request_error", "param": null, ' \
           b'"code": "bad"}}'
    with pytest.raises(RelayedError) as exc:
        reply_data("u", 400, {"content-type": "application/json"}, body,
                   EventType.PROMPT_CLASSIFIED, PromptClassified)
    assert exc.value.status == 400
