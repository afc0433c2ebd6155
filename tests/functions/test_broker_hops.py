"""Each hop keeps the broker path's context on its reply: the classifier and the selector
copy the producer's `pickspinreplyto` sink and carry its prompt as `ask`, only when a sink
is named (the gateway's request/reply calls stay as they were)."""

from __future__ import annotations

import asyncio

import pytest

from pickspin.core.errors import InvalidEvent
from pickspin.core.events import EventType, make_event

SINK = "http://producer.example/answers"
RECEIVED = {"request_id": "r1", "prompt": "Prove that there are infinitely many primes",
            "max_tokens": 7, "route": {"router": "keyword"}}


def test_the_classifier_carries_sink_and_prompt_only_when_a_sink_is_named(start_function):
    fn = start_function("classifier", {"PICKSPIN_INTERNAL_TOKEN": ""})
    plain = asyncio.run(fn.classify(make_event(EventType.PROMPT_RECEIVED, RECEIVED, "/gw")))
    assert plain.get_data()["ask"] is None
    assert "pickspinreplyto" not in plain.get_attributes()
    named = asyncio.run(fn.classify(make_event(EventType.PROMPT_RECEIVED, RECEIVED, "/p",
                                               pickspinreplyto=SINK)))
    assert named.get_attributes()["pickspinreplyto"] == SINK
    assert named.get_data()["ask"] == {"prompt": RECEIVED["prompt"], "max_tokens": 7,
                                       "temperature": None}
    assert named.get_data()["complexity"] == plain.get_data()["complexity"]


def test_the_classifier_refuses_a_bad_sink_before_classifying(start_function):
    fn = start_function("classifier", {"PICKSPIN_INTERNAL_TOKEN": ""})
    event = make_event(EventType.PROMPT_RECEIVED, RECEIVED, "/p", pickspinreplyto="mailto:x")
    with pytest.raises(InvalidEvent, match="absolute http"):
        asyncio.run(fn.classify(event))


def test_the_selector_carries_them_on_to_the_responder(start_function):
    fn = start_function("selector", {"PICKSPIN_INTERNAL_TOKEN": "", "PICKSPIN_TELEMETRY_URL": ""})
    classified = {"request_id": "r1", "complexity": "high", "router": "keyword",
                  "elapsed_ms": 0.1, "probabilities": {"low": 0.1, "medium": 0.1, "high": 0.8},
                  "ask": {"prompt": "p", "max_tokens": 7}}
    reply = asyncio.run(fn.route(make_event(EventType.PROMPT_CLASSIFIED, classified, "/c",
                                            pickspinreplyto=SINK)))
    assert reply.get_type() == "io.pickspin.route.selected"
    assert reply.get_attributes()["pickspinreplyto"] == SINK
    assert reply.get_data()["ask"] == {"prompt": "p", "max_tokens": 7, "temperature": None}
