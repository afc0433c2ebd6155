"""The backend proxy (the gateway's and the responder's): fallback over candidates, one
retry on a stale connection, the failures' names and relayed streams, against scripted
HTTP/1.1 servers on real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pickspin.apps.gateway.proxy import BackendProxy
from pickspin.core.events import Candidate, ScoreBreakdown

BREAKDOWN = ScoreBreakdown(relevance=1, latency=1, cost=1, latency_seconds=1,
                           cost_per_query=0, score=1)
SSE = [b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n',
       b'data: {"choices": [{"delta": {"content": "b"}}]}\n\n', b"data: [DONE]\n\n"]


class Scripted:
    """One backend: each request it reads gets the next step of its script — an HTTP status
    (a JSON body), "drop" (close before answering), "stream" (SSE to `[DONE]`) or "cut"
    (the first SSE event, then the connection closed)."""

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.requests: list[dict[str, object]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while self.script:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            self.requests.append(json.loads(await reader.readexactly(length)))
            step = self.script.pop(0)
            if step == "drop":
                break
            if step in ("stream", "cut"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                for event in SSE if step == "stream" else SSE[:1]:
                    writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if step == "cut":
                    break
                writer.write(b"0\r\n\r\n")
            else:
                body = json.dumps({"usage": {"completion_tokens": 1}}).encode()
                writer.write(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (int(str(step)), len(body), body))
            await writer.drain()
        writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[Callable[[list[object]], Awaitable[Scripted]]]:
    """Start a scripted backend on a free port; all are closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(script: list[object]) -> Scripted:
        scripted = Scripted(script)
        scripted.server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        servers.append(scripted.server)
        return scripted

    yield start
    for server in servers:
        server.close()


def candidate(name: str, url: str) -> Candidate:
    return Candidate(service=name, model=f"model-{name}", backend="b", endpoint=url,
                     breakdown=BREAKDOWN)


def nowhere() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_a_connection_dropped_before_any_answer_is_retried_once_on_the_same_backend(
        backend):
    a = await backend(["drop", 200])
    proxy = BackendProxy()
    up = await proxy.forward("chat", {"messages": []}, [candidate("a", a.url)], 0.0)
    await proxy.aclose()
    assert up.status == 200 and up.fallback == [] and len(a.requests) == 2
    assert json.loads(up.body)["usage"]["completion_tokens"] == 1
    assert a.requests[0]["model"] == "model-a"  # each candidate is asked for its own model


async def test_refused_and_5xx_move_on_to_the_next_candidate_without_retrying(backend):
    b = await backend([503])
    c = await backend([200])
    proxy = BackendProxy()
    up = await proxy.forward(
        "chat", {}, [candidate("a", nowhere()), candidate("b", b.url), candidate("c", c.url)],
        0.0)
    await proxy.aclose()
    assert up.candidate.service == "c" and up.fallback == ["a=refused", "b=http-503"]
    assert len(b.requests) == 1 and len(c.requests) == 1  # a 5xx is not retried


async def test_inflight_is_counted_up_and_back_down_for_failed_attempts(backend):
    a = await backend([500])
    b = await backend([200])
    seen: list[tuple[str, int]] = []
    proxy = BackendProxy()
    await proxy.forward("chat", {}, [candidate("x", nowhere()), candidate("a", a.url),
                                     candidate("b", b.url)],
                        0.0, lambda svc, d: seen.append((svc, d)))
    await proxy.aclose()
    assert seen == [("x", 1), ("x", -1), ("a", 1), ("a", -1), ("b", 1)]


async def test_a_stream_is_relayed_to_its_end_with_its_events_counted(backend):
    a = await backend(["stream"])
    proxy = BackendProxy(clock=lambda: 1.5)
    up = await proxy.forward("chat", {"stream": True}, [candidate("a", a.url)], 1.0)
    relayed = b"".join([chunk async for chunk in up.astream()])
    await proxy.aclose()
    assert relayed == b"".join(SSE) and up.ttft == 0.5
    assert up.chunks == 2 and up.broken is None


async def test_a_stream_cut_after_its_first_token_ends_marked_broken_not_raised(backend):
    a = await backend(["cut"])
    proxy = BackendProxy()
    up = await proxy.forward("chat", {"stream": True}, [candidate("a", a.url)], 0.0)
    relayed = b"".join([chunk async for chunk in up.astream()])
    await proxy.aclose()
    assert relayed == SSE[0] and up.chunks == 1
    assert up.broken in {"RemoteProtocolError", "ended-before-done"}


async def test_every_candidate_failing_is_one_502_naming_each(backend):
    from pickspin.core.errors import BackendFailed

    b = await backend([500])
    proxy = BackendProxy()
    with pytest.raises(BackendFailed) as failed:
        await proxy.forward("chat", {}, [candidate("a", nowhere()), candidate("b", b.url)], 0.0)
    await proxy.aclose()
    assert failed.value.status == 502 and failed.value.reasons == ("refused", "http-500")


async def test_a_client_leaving_mid_stream_frees_the_backend_and_is_logged_as_such(
        backend, settings):
    from pickspin.apps.gateway.answers import Answer, ColdOutcome
    from pickspin.apps.gateway.app import Gateway, Wiring
    from pickspin.apps.gateway.pick import Pick
    from pickspin.core.events import RouteSelected

    a = await backend(["stream"])
    chosen = candidate("a", a.url)
    gateway = Gateway(settings, Wiring("http://127.0.0.1:9", "http://127.0.0.1:9"))
    selected = RouteSelected(request_id="r", profile="balanced", strategy="multi-objective",
                             complexity="low", router="keyword", chosen=chosen)
    answer = Answer("r", Pick("low", "keyword", selected, 1.0), ColdOutcome(), waited=False)
    up = await gateway.proxy.forward("chat", {"stream": True}, [chosen], 0.0)
    gateway._enter()
    relay = gateway.answers.relay(up, answer)
    assert await anext(relay) == SSE[0]
    await relay.aclose()  # what the answer does when sending to the client fails
    assert up.broken == "client-gone" and up._response is None
    assert gateway.active == 0
    await gateway.aclose()
    gateway.close()
