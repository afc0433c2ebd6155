"""The end of each answer, however it comes (done, broken off, the client gone): its
metrics, `inference.completed` and access-log line, once; and the streamed relay, which
ends a stream that breaks after its first token with an OpenAI-style error event."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pickspin.adapters.asynchttp import AsyncEmitter
from pickspin.apps.gateway import accesslog
from pickspin.apps.gateway.metrics import GatewayMetrics
from pickspin.apps.gateway.pick import SOURCE, Pick
from pickspin.apps.gateway.proxy import CONNECTION_LOST, Upstream
from pickspin.core.errors import error_envelope
from pickspin.core.events import EventType, InferenceCompleted, make_event

log = logging.getLogger("pickspin.apps.gateway")


@dataclass(frozen=True)
class ColdOutcome:
    """What Spin did because the chosen service was at zero replicas."""

    action: Literal["none", "hold", "substitute"] = "none"
    service: str = ""
    waited: float | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Answer:
    """One request being answered: what its log line and its events need at the end."""

    request_id: str
    pick: Pick
    cold: ColdOutcome
    waited: bool  # held for the service that answered (a cold start the caller waited out)


class Answers:
    """Finishes answers: one per gateway process."""

    def __init__(self, metrics: GatewayMetrics, emitter: AsyncEmitter,
                 explain_lost: Callable[[str, str, float], str], leave: Callable[[], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.metrics = metrics
        self.emitter = emitter
        self.explain_lost = explain_lost
        self.leave = leave  # the request is no longer in flight (drain waits for it)
        self.clock = clock

    def response(self, upstream: Upstream, answer: Answer,
                 headers: dict[str, str]) -> Response:
        """The answer to send: a relay of the backend's stream, or its whole body (finished
        here)."""
        if upstream.first_chunk:
            headers["cache-control"] = "no-cache"
            return Relay(self, upstream, answer, headers)
        self.finish(upstream, answer, usage_tokens(upstream.body))
        return Response(upstream.body, status_code=upstream.status, headers=headers)

    async def relay(self, upstream: Upstream,
                    answer: Answer) -> AsyncGenerator[bytes, None]:
        """Relay the backend's stream. One that breaks off after its first token cannot fail
        over (the client has part of an answer): it ends with an OpenAI-style error event
        and no `[DONE]`, and is counted and logged as an error."""
        since = time.time()
        chunks = upstream.astream()
        try:
            async for chunk in chunks:
                yield chunk
            if upstream.broken is not None:
                service = upstream.candidate.service
                why = upstream.broken
                if why in CONNECTION_LOST | {"ended-before-done"}:
                    why = await asyncio.to_thread(self.explain_lost, service, why, since - 1.0)
                log.warning("request %s: the stream from %s broke off after %d events: %s",
                            answer.request_id, service, upstream.chunks, why)
                upstream.broken = why
                yield stream_error(f"the backend stopped answering mid-stream ({why}); the "
                                   "answer is incomplete")
        except GeneratorExit:  # the client went away before the end: free the backend now
            upstream.broken = upstream.broken or "client-gone"
            raise
        finally:
            await chunks.aclose()  # releases the backend connection (idempotent)
            self.finish(upstream, answer, upstream.chunks)

    def finish(self, upstream: Upstream, answer: Answer, tokens: int) -> None:
        c = upstream.candidate
        request_id, cold = answer.request_id, answer.waited
        latency = self.clock() - upstream.started
        outcome: Literal["success", "error"] = (
            "success" if upstream.status < 400 and upstream.broken is None else "error")
        self.metrics.inflight.labels(c.service).dec()
        self.metrics.requests.labels(c.model, c.backend, outcome).inc()
        self.metrics.duration.labels(c.model, c.backend).observe(latency)
        if upstream.ttft is not None:
            self.metrics.ttft.labels(c.model, c.backend).observe(upstream.ttft)
        done = InferenceCompleted(
            request_id=request_id, service=c.service, model=c.model, backend=c.backend,
            outcome=outcome, ttft_seconds=upstream.ttft, latency_seconds=latency,
            completion_tokens=tokens, cold_start=cold, fallback=tuple(upstream.fallback),
            finished_at=time.time(),
        )
        self.emitter.emit(make_event(EventType.INFERENCE_COMPLETED, done, SOURCE))
        self.leave()
        accesslog.request_line(
            request_id=request_id, status=upstream.status, outcome=outcome, model=c.model,
            backend=c.backend, service=c.service, profile=answer.pick.selected.profile,
            router=answer.pick.router, complexity=answer.pick.complexity,
            decision_ms=round(answer.pick.decision_ms, 2),
            ttft_ms=None if upstream.ttft is None else round(upstream.ttft * 1000, 1),
            latency_ms=round(latency * 1000, 1), tokens=tokens,
            fallback=",".join(upstream.fallback) or None, cold_action=answer.cold.action,
            cold_wait_ms=None if answer.cold.waited is None else round(answer.cold.waited * 1000),
            broken=upstream.broken)


class Relay(Response):
    """A streamed answer: the headers, then the backend's SSE bytes as they come. Its end,
    however it comes (done, broken off, the client gone), is counted, logged and emitted
    once, and the backend connection released."""

    def __init__(self, answers: Answers, upstream: Upstream, answer: Answer,
                 headers: Mapping[str, str]) -> None:
        self.status_code = upstream.status
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers.items()]
        self._body = answers.relay(upstream, answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._body.aclose()  # the relay's own `finally`: finish and release


def stream_error(message: str) -> bytes:
    """An SSE event in the OpenAI error format: how a stream that cannot finish ends."""
    payload = error_envelope(message, "server_error", "stream_interrupted")
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def usage_tokens(body: bytes) -> int:
    try:
        usage = json.loads(body).get("usage") or {}
        return int(usage.get("completion_tokens", 0))
    except (ValueError, AttributeError, TypeError):
        return 0
