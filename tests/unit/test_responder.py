"""The broker path's pieces without processes: the reply sink (validation, carried through
hops, covered by the signature) and the responder's answer, its backends served by scripted
handlers on a real port and its sink and health checks in memory."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.cehttp import EventClient
from pickspin.apps.gateway.coldstart import ColdStarts
from pickspin.apps.gateway.metrics import GatewayMetrics
from pickspin.apps.gateway.proxy import BackendProxy
from pickspin.apps.responder import Responder, SinkFailed, SinkRefused, Undelivered, chat_body
from pickspin.core.errors import BackendFailed, InvalidEvent, Unauthorized
from pickspin.core.eventauth import Signer
from pickspin.core.events import (
    Ask,
    Candidate,
    EventType,
    RouteSelected,
    ScoreBreakdown,
    decode,
    make_event,
)
from pickspin.core.replyto import carry, check_sink, sink_of
from pickspin.core.settings import Settings
from tests.conftest import VALUES

SETTINGS = Settings.load(VALUES)

SINK = "http://producer.example/answers"
ASK = Ask(prompt="Hi?", max_tokens=5)


@pytest.mark.parametrize("sink", [SINK, "https://a.example:8443/x?y=1"])
def test_an_absolute_http_sink_is_accepted(sink: str) -> None:
    assert check_sink(sink) == sink


@pytest.mark.parametrize(("sink", "why"), [
    (None, "no pickspinreplyto"), ("", "no pickspinreplyto"), ("/relative", "absolute"),
    ("ftp://a.example/x", "absolute"), ("http://", "absolute"),
    ("http://user:pw@a.example/", "credentials"), ("http://a.example:99999/", "not a URL"),
    ("http://a.example/a b", "whitespace"), ("http://a.example/" + "x" * 3000, "longer")])
def test_an_unusable_sink_is_a_400_naming_why(sink: str | None, why: str) -> None:
    with pytest.raises(InvalidEvent, match=why):
        check_sink(sink)


def test_the_sink_is_carried_onto_a_reply_and_signed() -> None:
    signer = Signer("s3cret")
    incoming = make_event(EventType.PROMPT_RECEIVED, {"request_id": "r", "prompt": "p"}, "/p",
                          pickspinreplyto=SINK)
    reply = carry(incoming, make_event(EventType.PROMPT_CLASSIFIED, {"x": 1}, "/c"))
    assert sink_of(reply) == SINK
    signed = signer.sign(reply)
    signer.verify(signed)
    moved = CloudEvent({**signed.get_attributes(), "pickspinreplyto": "http://evil.example/"},
                       signed.get_data())
    with pytest.raises(Unauthorized, match="does not match"):
        signer.verify(moved)
    assert carry(make_event(EventType.PING, {}, "/t"), reply) is reply  # nothing to carry


def candidate(url: str, service: str, warm: bool) -> Candidate:
    svc = SETTINGS.service(service)
    breakdown = ScoreBreakdown(relevance=1, latency=1, cost=1, latency_seconds=0.1,
                               cost_per_query=0.0, score=0.9)
    return Candidate(service=svc.name, model=svc.model, backend=svc.backend,
                     endpoint=f"{url}/{svc.name}", breakdown=breakdown, warm=warm)


# the chosen (medium tier) is cold; a warm substitute of a higher tier, a warm lower one
CHOSEN = "llama-3-70b-vllm"
HIGHER, LOWER = "qwen-3-235b-vllm", "gemma-3-27b-vllm"


def selected(url: str, ask: Ask | None = ASK, sink: str | None = SINK,
             profile: str = "balanced", chosen_warm: bool = False,
             runners: tuple[str, ...] = (LOWER, HIGHER)) -> CloudEvent:
    """A route.selected whose candidates' endpoints are `url/<service>`."""
    data = RouteSelected(request_id="req-1", profile=profile, strategy="multi-objective",
                         complexity="medium", router="keyword",
                         chosen=candidate(url, CHOSEN, chosen_warm),
                         runners_up=tuple(candidate(url, r, True) for r in runners),
                         ask=ask)
    extensions = {} if sink is None else {"pickspinreplyto": sink}
    return make_event(EventType.ROUTE_SELECTED, data, "/s", **extensions)


def test_the_body_is_one_user_message_not_streamed() -> None:
    assert chat_body(Ask(prompt="Hi?", max_tokens=5, temperature=0.0)) == {
        "messages": [{"role": "user", "content": "Hi?"}], "stream": False, "max_tokens": 5,
        "temperature": 0.0}


Handler = Callable[[httpx.Request], httpx.Response]


class Served(ThreadingHTTPServer):
    """A `Handler` on a real port: each request becomes an `httpx.Request`, the handler's
    `httpx.Response` is written back, and a handler raising `httpx.ConnectError` has the
    connection closed without an answer. Any other exception is kept in `errors`."""

    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.handler = handler
        self.errors: list[BaseException] = []
        threading.Thread(target=self.serve_forever, args=(0.02,), name="backend",
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the backends the proxy pools for
    server: Served

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        request = httpx.Request(self.command, self.server.url + self.path,
                                headers=list(self.headers.items()), content=body)
        try:
            response = self.server.handler(request)
        except httpx.ConnectError:
            self.close_connection = True  # gone before answering
            return
        except Exception as exc:
            self.server.errors.append(exc)
            self.close_connection = True
            return
        content = response.read()
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[Callable[[Handler], str]]:
    """Serve a handler on a free port and return its URL; every server is shut down after
    the test, which fails if a handler raised anything but `httpx.ConnectError`."""
    servers: list[Served] = []

    def serve(handler: Handler) -> str:
        servers.append(Served(handler))
        return servers[-1].url

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
    assert [e for server in servers for e in server.errors] == []


@pytest.fixture
async def responder(backends: Callable[[Handler], str]) -> AsyncIterator[
        Callable[..., tuple[Responder, str]]]:
    """Build a responder whose backends `backend` answers on a real port; returns it with
    the URL to build the candidates' endpoints from. Each is closed after the test."""
    made: list[Responder] = []

    def make(backend: Handler, sink: Handler,
             health: Handler | None = None) -> tuple[Responder, str]:
        sinks = EventClient(http=httpx.Client(transport=httpx.MockTransport(sink)), token="tok")
        metrics = GatewayMetrics(SETTINGS)
        cold = ColdStarts(SETTINGS, metrics.pending, poll_seconds=0.01, http=httpx.Client(
            transport=httpx.MockTransport(health or (lambda r: httpx.Response(200)))))
        made.append(Responder(SETTINGS, proxy=BackendProxy(), sinks=sinks,
                              metrics=metrics, cold=cold))
        return made[-1], backends(backend)

    yield make
    for answering in made:
        await answering.aclose()
        answering.close()


COMPLETION = {"choices": [{"message": {"role": "assistant", "content": "Hello."},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


async def test_the_answer_goes_to_the_sink_signed_and_the_reply_is_inference_completed(
        responder) -> None:
    """`balanced` substitutes: a warm model of a higher tier answers now, the cold chosen
    one is woken (its health polled while its pending gauge is up)."""
    asked: list[dict] = []
    delivered: list[CloudEvent] = []
    polled = threading.Event()

    def backend(request: httpx.Request) -> httpx.Response:
        asked.append({**json.loads(request.content), "path": request.url.path})
        return httpx.Response(200, json=COMPLETION)

    def sink(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == SINK
        delivered.append(decode(dict(request.headers), request.content))
        return httpx.Response(202)

    def health(request: httpx.Request) -> httpx.Response:
        if str(request.url) == f"{url}/{CHOSEN}/health":
            polled.set()
        return httpx.Response(200)

    answering, url = responder(backend, sink, health)
    reply = await answering.answer(selected(url))
    assert asked[0]["model"] == "qwen-3-235b" and asked[0]["max_tokens"] == 5
    assert asked[0]["path"] == f"/{HIGHER}/v1/chat/completions"
    assert await asyncio.to_thread(polled.wait, 5)  # the cold chosen service was woken
    [answer] = delivered
    Signer("tok").verify(answer)
    assert answer.get_type() == "io.pickspin.prompt.answered"
    assert answer.get_attributes()["subject"] == "req-1"
    data = answer.get_data()
    assert (data["outcome"], data["text"], data["finish_reason"]) == ("success", "Hello.", "stop")
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2}
    assert data["service"] == HIGHER and data["request_id"] == "req-1"
    assert reply.get_type() == "io.pickspin.inference.completed"
    assert reply.get_data()["outcome"] == "success"
    assert reply.get_data()["completion_tokens"] == 2
    # counted as the gateway counts: the demand the ScaledObjects read
    registry = answering.metrics.registry
    assert registry.get_sample_value("pickspin_requests_total", {
        "model": "qwen-3-235b", "backend": "vllm", "outcome": "success"}) == 1
    assert registry.get_sample_value("pickspin_inflight_requests", {"service": HIGHER}) == 0
    assert registry.get_sample_value("pickspin_route_decisions_total", {
        "router": "keyword", "complexity": "medium", "model": "qwen-3-235b",
        "backend": "vllm"}) == 1


async def test_quality_holds_for_the_cold_chosen_service_with_pending_demand(
        responder) -> None:
    """`quality` holds (no warm model of the chosen tier or above): the prompt waits for the
    chosen service, counted in `pickspin_pending_requests` (what activates its
    ScaledObject), and it answers."""
    asked: list[str] = []
    pending_seen: list[float | None] = []
    ready_after = [3]
    answering: Responder | None = None

    def backend(request: httpx.Request) -> httpx.Response:
        asked.append(json.loads(request.content)["model"])
        return httpx.Response(200, json=COMPLETION)

    def health(request: httpx.Request) -> httpx.Response:
        assert answering is not None
        pending_seen.append(answering.metrics.registry.get_sample_value(
            "pickspin_pending_requests", {"service": CHOSEN}))
        ready_after[0] -= 1
        return httpx.Response(200 if ready_after[0] <= 0 else 503)

    answering, url = responder(backend, lambda r: httpx.Response(202), health)
    await answering.answer(selected(url, profile="quality", runners=(LOWER,)))
    assert pending_seen == [1.0, 1.0, 1.0]
    assert asked == ["llama-3-70b"]
    assert answering.metrics.registry.get_sample_value(
        "pickspin_pending_requests", {"service": CHOSEN}) == 0


async def test_a_backend_refusal_is_an_error_answer_not_a_retry(responder) -> None:
    delivered: list[CloudEvent] = []
    too_long = {"error": {"message": "prompt too long", "type": "invalid_request_error",
                          "code": "context_length_exceeded"}}

    def sink(request: httpx.Request) -> httpx.Response:
        delivered.append(decode(dict(request.headers), request.content))
        return httpx.Response(200)

    answering, url = responder(lambda r: httpx.Response(400, json=too_long), sink)
    reply = await answering.answer(selected(url))
    data = delivered[0].get_data()
    assert data["outcome"] == "error" and data["text"] is None
    assert data["error"] == {"message": "prompt too long", "type": "invalid_request_error",
                             "code": "context_length_exceeded", "status": 400}
    assert reply.get_data()["outcome"] == "error"


async def test_no_backend_answering_is_a_502_the_broker_retries(responder) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    answering, url = responder(refused, lambda r: httpx.Response(202))
    with pytest.raises(BackendFailed) as failed:
        await answering.answer(selected(url))
    assert failed.value.status == 502
    assert set(failed.value.reasons) == {"RemoteProtocolError"}  # closed without answering


@pytest.mark.parametrize(("status", "error"), [(503, SinkFailed), (429, SinkFailed),
                                               (404, SinkFailed), (400, SinkRefused),
                                               (403, SinkRefused)])
async def test_a_sink_failure_maps_to_what_knative_retries(responder, status: int,
                                                          error: type) -> None:
    ok, url = responder(lambda r: httpx.Response(200, json=COMPLETION),
                        lambda r: httpx.Response(status))
    with pytest.raises(error) as raised:
        await ok.answer(selected(url))
    assert raised.value.status == (502 if error is SinkFailed else 422)


@pytest.mark.parametrize(("event", "why"), [
    (lambda url: selected(url, sink=None), "no pickspinreplyto"),
    (lambda url: selected(url, ask=None), "carries no prompt"),
    (lambda url: make_event(EventType.ROUTE_SELECTED, {"nonsense": 1}, "/s",
                            pickspinreplyto=SINK), "invalid data")],
    ids=["no-sink", "no-prompt", "bad-data"])
async def test_what_cannot_be_answered_is_a_400_before_any_backend_call(
        responder, event: Callable[[str], CloudEvent], why: str) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call expected")

    answering, url = responder(never, never)
    with pytest.raises(InvalidEvent, match=why):
        await answering.answer(event(url))


async def test_a_redelivery_after_a_sink_failure_resends_the_kept_answer(responder) -> None:
    asked: list[httpx.Request] = []
    statuses = [503, 202]
    delivered: list[CloudEvent] = []

    def backend(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json=COMPLETION)

    def sink(request: httpx.Request) -> httpx.Response:
        delivered.append(decode(dict(request.headers), request.content))
        return httpx.Response(statuses.pop(0))

    answering, url = responder(backend, sink)
    event = selected(url)
    with pytest.raises(SinkFailed):
        await answering.answer(event)
    reply = await answering.answer(event)  # the Broker's redelivery of the same event
    assert len(asked) == 1  # the backend answered once
    assert [e.get_id() for e in delivered] == [delivered[0].get_id()] * 2
    assert reply.get_type() == "io.pickspin.inference.completed"
    assert answering.undelivered.take(event) is None  # delivered: no longer kept


def test_kept_answers_are_bounded_in_count_and_age() -> None:
    now = [0.0]
    kept = Undelivered(capacity=2, max_age=10.0, clock=lambda: now[0])
    events = [make_event(EventType.PING, {}, "/t") for _ in range(3)]
    for e in events:
        kept.keep(e, e, e)
    assert kept.take(events[0]) is None and kept.take(events[2]) is not None
    now[0] = 11.0
    assert kept.take(events[2]) is None
