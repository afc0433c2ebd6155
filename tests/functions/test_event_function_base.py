"""`EventFunction.handle` under func_python.cloudevent: the reply goes back in the mode it
was asked in, 202 without one, and every error is ours to map (never the middleware's
`dev.functions.error` 500, nor its ValueError→400 for a bug of ours)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from cloudevents.core.v1.event import CloudEvent
from func_python.http import ASGIApplication as HTTPApplication

from pickspin.adapters.function import EventFunction, EventHandler
from pickspin.core.events import EventType, make_event
from pickspin.core.settings import Settings
from tests.conftest import call
from tests.functions.test_event_functions import post, sdk_event


class Sample(EventFunction):
    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        return {EventType.PING: self.echo, EventType.INFERENCE_COMPLETED: self.take,
                EventType.PROMPT_RECEIVED: self.broken}

    async def echo(self, event: CloudEvent) -> CloudEvent:
        return make_event(EventType.TELEMETRY_SNAPSHOT, {"echo": event.get_data()}, "/t")

    async def take(self, event: CloudEvent) -> None:
        return None

    async def broken(self, event: CloudEvent) -> CloudEvent:
        raise ValueError("a bug of ours")


@pytest.fixture
def sample(settings: Settings) -> Sample:
    fn = Sample(settings)
    fn.start({})
    return fn


async def test_binary_in_binary_out_and_structured_in_structured_out(sample):
    binary = await post(sample, sdk_event(EventType.PING, {"n": 1}), "binary")
    assert binary.status == 200 and binary.headers["ce-type"] == EventType.TELEMETRY_SNAPSHOT
    structured = await post(sample, sdk_event(EventType.PING, {"n": 1}), "structured")
    assert structured.status == 200
    assert structured.headers["content-type"].startswith("application/cloudevents+json")
    assert structured.json()["data"] == {"echo": {"n": 1}}


async def test_no_reply_event_is_a_202_with_an_empty_body(sample):
    reply = await post(sample, sdk_event(EventType.INFERENCE_COMPLETED, {}), "binary")
    assert (reply.status, reply.body) == (202, b"")


async def test_a_bug_is_a_500_envelope_not_a_400(sample):
    reply = await post(sample, sdk_event(EventType.PROMPT_RECEIVED, {}), "binary")
    assert reply.status == 500
    assert reply.json()["error"]["code"] == "internal"


async def test_before_start_it_answers_503(settings):
    reply = await post(Sample(settings), sdk_event(EventType.PING, {}), "binary")
    assert reply.status == 503
    assert reply.json()["error"]["code"] == "not_started"


async def test_served_by_the_http_middleware_by_mistake_it_says_so(sample):
    class Served:
        def __init__(self) -> None:
            self.handle = HTTPApplication(sample)

    reply = await call(Served(), "POST", "/", {"content-type": "application/json"}, b"{}")
    assert reply.status == 500
    assert "func_python.cloudevent" in reply.json()["error"]["message"]
