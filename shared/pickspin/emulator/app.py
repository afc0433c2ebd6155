"""The emulated backend as an ASGI app (Starlette): OpenAI endpoints, health, metrics.

One instance emulates one service (model × backend). Requests wait for one of
`max_concurrency` slots (an asyncio semaphore; waiting requests are the kind's
"waiting"/"queue" metric), then the first token comes after a lognormal TTFT and the
rest at `tokens_per_second`. Everything waits on asyncio sleeps, so dozens of streams
cost next to nothing.

Cold start: the process listens at once but is loading for `cold_start_seconds`; until
then `/health` and the completion endpoints answer 503 with an OpenAI error envelope.
(A real vLLM or trtllm-serve does not listen at all while it loads; a 503 makes the
loading state observable and lets a readiness probe see it.) `/v1/models` and the
metrics answer throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pickspin.adapters.httpfunction import register_error_handlers
from pickspin.core.errors import InvalidRequest
from pickspin.core.settings import BackendKind
from pickspin.emulator.metrics import EngineMetrics, make_metrics
from pickspin.emulator.openai_format import (
    CompletionRequest,
    EmulatedFailure,
    Endpoint,
    ModelLoading,
    full_response,
    parse_request,
    sse,
    stream_chunk,
    usage_chunk,
)
from pickspin.emulator.profile import EmulationProfile, filler_tokens

MAX_BODY_BYTES = 4 * 1024 * 1024
ROUTES = {"/v1/chat/completions": Endpoint.CHAT, "/v1/completions": Endpoint.COMPLETION}
log = logging.getLogger(__name__)


class EmulatorApp:
    """ASGI app of one emulated backend.

    >>> app = EmulatorApp(model="gemma-3-27b", kind=BackendKind.VLLM,
    ...                   profile=EmulationProfile(60, 250, 45.0, 64))
    >>> app.metrics.path
    '/metrics'
    """

    def __init__(
        self,
        *,
        model: str,
        kind: BackendKind,
        profile: EmulationProfile,
        metrics: EngineMetrics | None = None,
        health_path: str = "/health",
        metrics_path: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.model = model
        self.kind = BackendKind(kind)
        self.profile = profile
        self.metrics = metrics or make_metrics(self.kind, model)
        self.health_paths = {"/health", health_path}
        self.metrics_paths = {self.metrics.path, metrics_path or self.metrics.path}
        self.rng = rng or random.Random()
        self.clock = clock
        self.sleep = sleep
        self.fingerprint = f"pickspin-emulator-{self.kind.value}"
        self.ready_at = clock() + profile.cold_start_seconds
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(profile.max_concurrency)
        self.metrics.set_load(0, 0, profile.max_concurrency)
        self.asgi = Starlette(routes=self._routes())
        register_error_handlers(self.asgi)  # the OpenAI envelope, as the gateway's

    @property
    def ready(self) -> bool:
        return self.clock() >= self.ready_at

    # ---- HTTP face (Starlette) ---------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)

    def _routes(self) -> list[Route]:
        """The completions, the kind's health and metrics paths, `/v1/models`."""
        routes = [Route(path, _Completions(self, endpoint), methods=["POST"])
                  for path, endpoint in ROUTES.items()]
        routes += [Route(path, self._health, methods=["GET"]) for path in self.health_paths]
        routes += [Route(path, self._metrics, methods=["GET"]) for path in self.metrics_paths]
        if "/v1/models" not in self.health_paths:
            routes.append(Route("/v1/models", self._models, methods=["GET"]))
        return routes

    async def _health(self, request: Request) -> Response:
        if not self.ready:
            raise self._loading()
        # a server whose readiness is its model list (llama.cpp) still lists models
        body = self._model_list() if request.url.path == "/v1/models" else {"status": "ok"}
        return JSONResponse(body)

    async def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def _models(self, request: Request) -> Response:
        return JSONResponse(self._model_list())

    def _loading(self) -> ModelLoading:
        left = max(self.ready_at - self.clock(), 0.0)
        return ModelLoading(f"model {self.model} is loading (emulated cold start, "
                            f"{left:.1f} s left)")

    def _model_list(self) -> dict[str, Any]:
        card = {"id": self.model, "object": "model", "created": int(time.time()),
                "owned_by": f"pickspin-emulator ({self.kind.value}, no real model)",
                "max_model_len": self.profile.max_model_len}
        return {"object": "list", "data": [card]}

    def _set_load(self) -> None:
        self.metrics.set_load(self.running, self.waiting, self.profile.max_concurrency)

    # ---- completions ------------------------------------------------------------------
    async def _completion(self, endpoint: Endpoint, receive: Receive, send: Send) -> None:
        arrival = self.clock()
        self.metrics.request_received()
        body = await _read_body(receive)
        if not self.ready:
            raise self._loading()
        req = parse_request(endpoint, body, served_model=self.model,
                            default_max_tokens=self.profile.default_max_tokens,
                            max_model_len=self.profile.max_model_len)
        if self.rng.random() < self.profile.error_rate:
            raise EmulatedFailure(f"emulated failure of {self.model} on {self.kind.value} "
                                  f"(errorRate {self.profile.error_rate})")
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            if not await self._acquire(gone):
                return
            try:
                await self._generate(req, arrival, send, gone)
            finally:
                self.running -= 1
                self._slots.release()
                self._set_load()
        finally:
            watcher.cancel()

    async def _acquire(self, gone: asyncio.Event) -> bool:
        """Wait for a slot, counted as waiting; False if the client left first."""
        self.waiting += 1
        self._set_load()
        acquire = asyncio.ensure_future(self._slots.acquire())
        left = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({acquire, left}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            self.waiting -= 1
            if not acquire.done():
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
            self._set_load()
        got = acquire.done() and not acquire.cancelled() and acquire.exception() is None
        if got and gone.is_set():
            self._slots.release()
            return False
        if got:
            self.running += 1
            self._set_load()
        return got

    async def _until(self, moment: float, gone: asyncio.Event | None = None) -> None:
        """Sleep until `moment` on the app's clock; wake early if `gone` is set."""
        delay = moment - self.clock()
        if delay <= 0:
            return
        if gone is None:
            await self.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), delay)

    async def _generate(self, req: CompletionRequest, arrival: float, send: Send,
                        gone: asyncio.Event) -> None:
        started = self.clock()
        first_at = started + self.profile.ttft.sample(self.rng)
        step = self.profile.inter_token_seconds
        tokens = filler_tokens(req.prompt_text, req.max_tokens)
        prefix = "chatcmpl" if req.endpoint is Endpoint.CHAT else "cmpl"
        rid, created = f"{prefix}-{uuid.uuid4().hex}", int(time.time())
        if not req.stream:
            await self._until(first_at, gone)
            ttft = self.clock() - arrival
            await self._until(first_at + (len(tokens) - 1) * step, gone)
            if gone.is_set():
                return
            self._crash_point(len(tokens))
            await _send_json(send, 200, full_response(req, rid, created, self.fingerprint,
                                                      tokens))
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"),
                                    (b"cache-control", b"no-cache")]})
            ttft = 0.0
            for i, token in enumerate(tokens):
                await self._until(first_at + i * step, gone if i == 0 else None)
                if gone.is_set():
                    return
                if i == 0:
                    ttft = self.clock() - arrival
                self._crash_point(i)
                chunk = stream_chunk(req, rid, created, self.fingerprint, text=token,
                                     first=i == 0)
                await send({"type": "http.response.body", "body": sse(chunk), "more_body": True})
            tail = sse(stream_chunk(req, rid, created, self.fingerprint, text=None,
                                    first=not tokens, finish_reason=req.finish_reason))
            if req.include_usage:
                tail += sse(usage_chunk(req, rid, created, self.fingerprint, len(tokens)))
            await send({"type": "http.response.body", "body": tail + sse("[DONE]"),
                        "more_body": False})
        self.metrics.request_finished(
            ttft=ttft, e2e=self.clock() - arrival, queued=started - arrival,
            prompt_tokens=req.prompt_tokens, generation_tokens=len(tokens),
            finish_reason=req.finish_reason)


    def _crash_point(self, sent: int) -> None:
        """Fault injection (`crashAfterTokens`): once `sent` tokens reach it, die by SIGSEGV
        as a native engine does when it faults mid-answer (nothing is flushed or closed)."""
        limit = self.profile.crash_after_tokens
        if limit is not None and sent >= limit:
            log.error("crashAfterTokens=%d reached: this process kills itself with SIGSEGV",
                      limit)
            os.kill(os.getpid(), signal.SIGSEGV)


# ---- ASGI helpers ---------------------------------------------------------------------
class _ClientGone(Exception):
    """The client left before its request could be answered."""


class _Completions:
    """The completion endpoints as a raw ASGI route: the answer is streamed with `send`
    while `receive` is watched for the client leaving (which frees its slot at once)."""

    def __init__(self, app: EmulatorApp, endpoint: Endpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(_ClientGone):
            await self.app._completion(self.endpoint, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone("client left before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f"the request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send(send, status, json.dumps(payload).encode(), "application/json")
