"""The local broker stand-in reads the chart's rendered Broker and Triggers and applies
Knative's filter and delivery rules (pickspin.local.broker cites the upstream code). Here
with an in-memory HTTP transport and a recorded `sleep`; the real-process path is
tests/functions/test_broker_path.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.events import decode
from pickspin.core.replyto import retryable
from pickspin.core.settings import Settings
from pickspin.local.broker import LocalBroker, render
from pickspin.local.delivery import Delivery, Route, iso_seconds
from tests.conftest import VALUES

SERVICES = {"pickspin-classifier": "http://classifier", "pickspin-selector": "http://selector",
            "pickspin-telemetry": "http://telemetry", "pickspin-responder": "http://responder",
            "pickspin-dead-letters": "http://dead"}


def event(type_: str = "io.pickspin.prompt.received", **extensions: str) -> CloudEvent:
    return CloudEvent({"id": "e1", "type": type_, "source": "/t", **extensions}, {"x": 1})


@pytest.mark.parametrize(("text", "seconds"), [
    ("PT0.5S", 0.5), ("PT1S", 1.0), ("PT2M", 120.0), ("PT1H30M", 5400.0), ("P1D", 86400.0),
    ("P1DT0.25S", 86400.25)])
def test_iso_8601_durations(text: str, seconds: float) -> None:
    assert iso_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "0.5", "PT-1S", "1S", "T1S"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        iso_seconds(text)


def test_backoff_follows_knatives_formula() -> None:
    """Before retry n (0-based): delay·2ⁿ exponential, delay·n linear."""
    assert [Delivery(3, "exponential", 0.5).backoff(n) for n in range(3)] == [0.5, 1.0, 2.0]
    assert [Delivery(3, "linear", 0.5).backoff(n) for n in range(3)] == [0.0, 0.5, 1.0]
    assert Delivery(3, None, 0.5).backoff(2) == 0.0


def test_what_knative_retries() -> None:
    assert all(retryable(s) for s in (None, 500, 502, 503, 404, 408, 409, 429))
    assert not any(retryable(s) for s in (200, 202, 301, 400, 401, 403, 405, 413, 422))


def test_filter_attributes_are_an_exact_match_with_empty_for_any() -> None:
    route = Route("t", {"type": "io.pickspin.prompt.received"}, "http://x", Delivery())
    assert route.passes(event())
    assert not route.passes(event("io.pickspin.prompt.classified"))
    anything = Route("t", {"pickspinreplyto": ""}, "http://x", Delivery())
    assert anything.passes(event(pickspinreplyto="http://me"))
    assert not anything.passes(event())  # a missing attribute fails even the "any" value
    both = Route("t", {"type": "io.pickspin.prompt.received", "source": "/other"}, "http://x",
                 Delivery())
    assert not both.passes(event())
    assert Route("t", {}, "http://x", Delivery()).passes(event("anything"))


def test_the_rendered_chart_gives_a_trigger_per_broker_hop() -> None:
    broker = LocalBroker.from_objects(render(Settings.load(VALUES)), SERVICES)
    routes = {(r.attributes["type"], r.subscriber) for r in broker.routes}
    assert {("io.pickspin.prompt.received", "http://classifier"),
            ("io.pickspin.prompt.classified", "http://selector"),
            ("io.pickspin.route.selected", "http://responder"),
            ("io.pickspin.inference.completed", "http://telemetry"),
            ("io.pickspin.telemetry.snapshot", "http://selector"),
            ("dev.knative.sources.ping", "http://telemetry")} == routes
    # the Broker's delivery from the default values, on every Trigger that has none
    assert {r.delivery for r in broker.routes} == {Delivery(5, "exponential", 0.5,
                                                            "http://dead")}
    broker.close()


def test_a_functions_own_delivery_replaces_the_brokers_on_its_trigger() -> None:
    own = {"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT2S",
           "deadLetterSink": {"uri": "http://elsewhere/dead"}}
    objects = render(Settings.load(VALUES), {"functions": {"responder": {"delivery": own}}})
    broker = LocalBroker.from_objects(objects, SERVICES)
    by_type = {r.attributes["type"]: r.delivery for r in broker.routes}
    assert by_type["io.pickspin.route.selected"] == Delivery(1, "linear", 2.0,
                                                             "http://elsewhere/dead")
    assert by_type["io.pickspin.prompt.received"].retry == 5
    broker.close()


def test_a_trigger_whose_subscriber_is_unknown_is_not_ready() -> None:
    services = {k: v for k, v in SERVICES.items() if k != "pickspin-telemetry"}
    broker = LocalBroker.from_objects(render(Settings.load(VALUES)), services)
    assert sorted(broker.unready) == ["pickspin-telemetry-dev-knative-sources-ping",
                                      "pickspin-telemetry-inference-completed"]
    broker.close()


def test_spec_filters_are_refused_rather_than_ignored() -> None:
    objects = render(Settings.load(VALUES))
    trigger = next(o for o in objects if o["kind"] == "Trigger")
    trigger["spec"]["filters"] = [{"prefix": {"type": "io.pickspin"}}]
    with pytest.raises(ValueError, match=r"spec\.filters"):
        LocalBroker.from_objects(objects, SERVICES)


Handler = Callable[[httpx.Request], httpx.Response]


def broker_with(handler: Handler, delivery: Delivery, sleeps: list[float]) -> LocalBroker:
    routes = [Route("to-classifier", {"type": "io.pickspin.prompt.received"},
                    "http://classifier", delivery),
              Route("to-selector", {"type": "io.pickspin.prompt.classified"},
                    "http://selector", delivery)]
    return LocalBroker(routes, http=httpx.Client(transport=httpx.MockTransport(handler)),
                       sleep=sleeps.append)


def test_a_retryable_failure_is_retried_with_back_off_then_dead_lettered() -> None:
    seen: list[tuple[str, httpx.Request]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request))
        if request.url.host == "dead":
            return httpx.Response(202)
        return httpx.Response(503, json={"error": {"code": "busy"}})

    sleeps: list[float] = []
    broker = broker_with(handler, Delivery(3, "exponential", 0.5, "http://dead"), sleeps)
    broker.deliver(broker.routes[0], event())
    assert [u for u, _ in seen] == ["http://classifier"] * 4 + ["http://dead"]
    assert sleeps == [0.5, 1.0, 2.0]
    assert all(r.headers["prefer"] == "reply" for _, r in seen[:4])
    dead = decode(dict(seen[-1][1].headers), seen[-1][1].content)
    attributes = dead.get_attributes()
    assert attributes["id"] == "e1" and attributes["type"] == "io.pickspin.prompt.received"
    assert attributes["knativeerrordest"] == "http://classifier"
    assert attributes["knativeerrorcode"] == "503"
    assert json.loads(base64.b64decode(attributes["knativeerrordata"])) == {
        "error": {"code": "busy"}}
    assert [a.status for a in broker.attempts] == [503] * 4 + [202]


def test_a_refusal_is_not_retried_and_without_a_sink_is_dropped() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(401)

    sleeps: list[float] = []
    broker = broker_with(handler, Delivery(3, "linear", 1.0), sleeps)
    broker.deliver(broker.routes[0], event())
    assert calls == ["http://classifier"] and sleeps == []


def test_an_unanswered_delivery_is_dead_lettered_with_code_500() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dead":
            return httpx.Response(200)
        raise httpx.ConnectError("refused", request=request)

    sleeps: list[float] = []
    broker = broker_with(handler, Delivery(2, "linear", 1.0, "http://dead"), sleeps)
    broker.deliver(broker.routes[0], event())
    assert sleeps == [0.0, 1.0]
    [dead] = [a for a in broker.attempts if a.dead_letter]
    assert [a.status for a in broker.attempts] == [None, None, None, 200]
    assert dead.url == "http://dead"


def test_a_reply_event_goes_back_into_the_broker() -> None:
    reply = CloudEvent({"id": "r1", "type": "io.pickspin.prompt.classified", "source": "/c"},
                       {"y": 2})
    got: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(str(request.url))
        if request.url.host == "classifier":
            message = to_binary_event(reply)
            return httpx.Response(200, headers=message.headers, content=message.body)
        return httpx.Response(202)

    broker = broker_with(handler, Delivery(), [])
    broker.deliver(broker.routes[0], event())
    broker.settle()  # the re-injected reply is delivered in the background
    assert got == ["http://classifier", "http://selector"]
    assert broker.attempts[-1].event_id == "r1"


def test_an_event_no_trigger_passes_goes_nowhere() -> None:
    calls: list[str] = []
    broker = broker_with(lambda r: calls.append(str(r.url)) or httpx.Response(202),
                         Delivery(), [])
    assert broker.publish(event("io.example.other")) == 0
    broker.settle()
    assert calls == [] and [e.get_id() for e in broker.unmatched] == ["e1"]
