"""The gateway's request path: the OpenAI contract for `/v1/chat/completions`,
`/v1/completions` and `/v1/models` — Pick (classifier and selector over CloudEvents), Spin
(cold holds, substitutes), proxying with fallback, the `x-pickspin-*` headers, metrics and
`inference.completed`. It runs on the event loop (Starlette, no thread per request); the
rare blocking waits (a cold backend, a crash report) go to a thread. Its app and the checks
in front of it: `gateway/routes.py`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from cloudevents.core.v1.event import CloudEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pickspin.asynchttp import AsyncEmitter, AsyncEventClient
from pickspin.coldplan import cold_plan
from pickspin.errors import (
    BackendFailed,
    InvalidRequest,
    ModelNotFound,
    RelayedError,
    Unreachable,
    UpstreamError,
    error_envelope,
)
from pickspin.events import (
    Candidate,
    EventType,
    InferenceCompleted,
    PromptClassified,
    PromptReceived,
    RouteRequest,
    RouteSelected,
    data_of,
    make_event,
)
from pickspin.gateway import accesslog
from pickspin.gateway.coldstart import ColdStarts
from pickspin.gateway.metrics import GatewayMetrics
from pickspin.gateway.openai_request import (
    AUTO_MODEL,
    MAX_CLASSIFIED_CHARS,
    ParsedRequest,
    parse,
    read_body,
)
from pickspin.gateway.proxy import CONNECTION_LOST, UNREACHED, AsyncBackendProxy, AsyncUpstream
from pickspin.replicas import LocalReplicas, ReplicaSource
from pickspin.settings import COMPLEXITY_CLASSES, RouterName, Settings

SOURCE = "/pickspin/gateway"
PROFILE_PREFIX = "pickspin/"
log = logging.getLogger("pickspin.gateway")


@dataclass(frozen=True)
class Wiring:
    """Where the gateway's collaborators are."""

    classifier_url: str
    selector_url: str
    sink: str | None = None
    #: where replica counts and crashes are read (the local scaler's status server)
    replicas_url: str | None = None
    #: the internal token events to the functions are signed with (`pickspin.eventauth`)
    token: str | None = None
    #: keys a caller must present as `Authorization: Bearer <key>`; none = open
    api_keys: tuple[str, ...] = ()
    #: requests answered at once; past it a 429 with Retry-After (PICKSPIN_MAX_INFLIGHT)
    max_inflight: int = 256


@dataclass(frozen=True)
class ColdOutcome:
    """What Spin did because the chosen service was at zero replicas."""

    action: Literal["none", "hold", "substitute"] = "none"
    service: str = ""
    waited: float | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Pick:
    complexity: str
    router: str
    selected: RouteSelected
    decision_ms: float


@dataclass(frozen=True)
class Answer:
    """One request being answered: what its log line and its events need at the end."""

    request_id: str
    pick: Pick
    cold: ColdOutcome
    waited: bool  # held for the service that answered (a cold start the caller waited out)


class Gateway:
    """Everything one gateway process holds: settings, clients, metrics, emitter."""

    def __init__(
        self,
        settings: Settings,
        wiring: Wiring,
        *,
        events: AsyncEventClient | None = None,
        proxy: AsyncBackendProxy | None = None,
        metrics: GatewayMetrics | None = None,
        emitter: AsyncEmitter | None = None,
        cold: ColdStarts | None = None,
        replicas: ReplicaSource | None = None,
        clock: Callable[[], float] = time.perf_counter,
        crash_wait: float = 0.2,
        route_wait: float = 10.0,
    ) -> None:
        self.settings = settings
        self.wiring = wiring
        self.replicas = replicas or (LocalReplicas(wiring.replicas_url)
                                     if wiring.replicas_url else None)
        self.crash_wait = crash_wait
        self.route_wait = route_wait
        self.events = events or AsyncEventClient(token=wiring.token)
        self.proxy = proxy or AsyncBackendProxy(explain=self.explain_lost)
        self.metrics = metrics or GatewayMetrics(settings)
        self.emitter = emitter or AsyncEmitter(wiring.sink, token=wiring.token)
        self.cold = cold or ColdStarts(settings, self.metrics.pending)
        self.clock = clock
        self._models = {m.name for m in settings.models}
        self._emulated = {s.name: s.emulated for s in settings.services}
        self._emulated_models = {m.name for m in settings.models if all(
            s.emulated for s in settings.services if s.model == m.name)}
        self._profiles = sorted(settings.profiles)
        self._routers = {r.value for r in RouterName}
        #: a concrete model skips classification: this stands for it (Spin still picks)
        self._even = {k: 1 / len(COMPLEXITY_CLASSES) for k in COMPLEXITY_CLASSES}
        self._bounds = {p: f"{settings.routing.trade_down_for(p).relevance:.2f}"
                        for p in settings.profiles}
        #: set by `drain`: new requests get 503 while those in flight finish
        self.draining = False
        self._active = 0
        self._active_changed = threading.Condition()

    # ---- drain ----------------------------------------------------------------------
    @property
    def active(self) -> int:
        """Requests accepted and not yet finished (streams until their last byte)."""
        return self._active

    def _enter(self) -> None:
        with self._active_changed:
            self._active += 1

    def _leave(self) -> None:
        with self._active_changed:
            self._active -= 1
            self._active_changed.notify_all()

    def drain(self, grace: float) -> bool:
        """Take no new requests; wait up to `grace` seconds for those in flight to finish
        (what Knative's queue-proxy does before a pod's container is stopped). True if
        they all did."""
        self.draining = True
        with self._active_changed:
            return self._active_changed.wait_for(lambda: self._active == 0, timeout=grace)

    # ---- Pick -----------------------------------------------------------------------
    def route_request(self, model: str, headers: Mapping[str, str]) -> RouteRequest:
        """`model` and the override headers → what the selector must honour."""
        profile = headers.get("x-pickspin-profile")
        router = headers.get("x-pickspin-router")
        concrete = None
        if model == AUTO_MODEL:
            pass
        elif model.startswith(PROFILE_PREFIX):
            named = model.removeprefix(PROFILE_PREFIX)
            if named not in self.settings.profiles:
                raise ModelNotFound(f"the model {model!r} does not exist; profiles are "
                                    f"{self._profiles}", param="model")
            profile = profile or named
        elif model in self._models:
            concrete = model
        else:
            raise ModelNotFound(f"the model {model!r} does not exist", param="model")
        if profile is not None and profile not in self.settings.profiles:
            raise InvalidRequest(f"x-pickspin-profile: unknown profile {profile!r}; choose one "
                                 f"of {self._profiles}", param="x-pickspin-profile")
        if router is not None and router not in self._routers:
            raise InvalidRequest(f"x-pickspin-router: unknown router {router!r}; choose one of "
                                 f"{[r.value for r in RouterName]}", param="x-pickspin-router")
        return RouteRequest(profile=profile, router=router, model=concrete)

    async def pick(self, request_id: str, parsed: ParsedRequest,
                   headers: Mapping[str, str]) -> Pick:
        route = self.route_request(parsed.model, headers)
        start = self.clock()
        if route.model is None:
            received = PromptReceived(request_id=request_id, route=route,
                                     prompt=parsed.prompt[:MAX_CLASSIFIED_CHARS])
            reply = await self._call("classifier", self.wiring.classifier_url,
                               make_event(EventType.PROMPT_RECEIVED, received, SOURCE),
                               EventType.PROMPT_CLASSIFIED)
            classified = data_of(reply, PromptClassified)
            self.metrics.classification.labels(classified.router).observe(
                classified.elapsed_ms / 1000
            )
        else:  # a concrete model skips Pick's classification; Spin still picks its backend
            classified = PromptClassified(request_id=request_id, complexity="medium",
                                          probabilities=self._even, router="none",
                                          elapsed_ms=0.0, route=route)
        reply = await self._call("selector", self.wiring.selector_url,
                           make_event(EventType.PROMPT_CLASSIFIED, classified, SOURCE),
                           EventType.ROUTE_SELECTED)
        selected = data_of(reply, RouteSelected)
        complexity = classified.complexity if route.model is None else "unclassified"
        decision_ms = (self.clock() - start) * 1000
        return Pick(complexity, classified.router, selected, decision_ms)

    async def _call(self, name: str, url: str, event: CloudEvent,
                    expect: EventType) -> CloudEvent:
        """Request/reply with a collaborator; its URL stays in the log, not in the answer.

        A collaborator that does not listen (starting, or restarted after a crash) and a
        selector with no service ready yet (503 at start-up) are waited out with back-off
        for up to `route_wait` seconds, as Knative's activator holds a request for a
        revision that is starting; other errors answer at once."""
        deadline = time.monotonic() + self.route_wait
        delay = 0.05
        while True:
            try:
                return await self.events.request(url, event, expect)
            except Unreachable as exc:
                if time.monotonic() + delay > deadline:
                    raise UpstreamError(f"the {name} function did not answer",
                                        detail=exc.message) from None
            except UpstreamError as exc:
                raise UpstreamError(f"the {name} function did not answer properly",
                                    detail=exc.message) from None
            except RelayedError as exc:
                if exc.status != 503 or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # ---- serving --------------------------------------------------------------------
    async def serve(self, request: Request, kind: Literal["chat", "completion"]) -> Response:
        started = self.clock()
        parsed = parse(await read_body(request.stream()), kind)
        headers = request.headers
        request_id = headers.get("x-request-id") or f"req-{uuid.uuid4().hex}"
        self._enter()
        try:
            return await self._serve(kind, parsed, request_id, started, headers)
        except BaseException:
            self._leave()
            raise

    async def _serve(self, kind: Literal["chat", "completion"], parsed: ParsedRequest,
                     request_id: str, started: float, headers: Mapping[str, str]) -> Response:
        pick = await self.pick(request_id, parsed, headers)
        sel = pick.selected
        if sel.chosen.warm:
            candidates, cold = [sel.chosen, *sel.runners_up], ColdOutcome()
        else:  # may hold for a cold start (blocking, bounded): off the event loop
            candidates, cold = await asyncio.to_thread(self._spin, sel)
        try:
            upstream = await self.proxy.forward(kind, parsed.body, candidates, started,
                                                self._inflight)
        except BackendFailed as exc:
            # nothing listened (a scaler restarting, every replica draining): none of them
            # answered at all, so wait for the chosen one as for a cold start, then retry
            if not exc.reasons or not set(exc.reasons) <= UNREACHED or cold.timed_out:
                raise
            limit = self.settings.profile(sel.profile).scaling.max_cold_wait_seconds
            if await asyncio.to_thread(self.cold.hold, candidates[0], limit) is None:
                raise
            upstream = await self.proxy.forward(kind, parsed.body, candidates, started,
                                                self._inflight)
        if cold.timed_out:
            upstream.fallback.insert(0, f"{cold.service}=cold-start-timeout")
        chosen = upstream.candidate
        waited = cold.action == "hold" and chosen.service == cold.service
        self.metrics.decisions.labels(pick.router, pick.complexity, chosen.model,
                                      chosen.backend).inc()
        b = chosen.breakdown
        reply_headers = {
            **upstream.headers,
            "x-request-id": request_id,
            "x-pickspin-model": chosen.model,
            "x-pickspin-backend": chosen.backend,
            "x-pickspin-service": chosen.service,
            "x-pickspin-emulated": "true" if self._emulated.get(chosen.service) else "false",
            "x-pickspin-complexity": pick.complexity,
            "x-pickspin-score": f"{b.score:.4f}",
            "x-pickspin-score-breakdown": (
                f"relevance={b.relevance:.4f};latency={b.latency:.4f};cost={b.cost:.4f}"),
            "x-pickspin-profile": sel.profile,
            "x-pickspin-router": pick.router,
            "x-pickspin-cold-start": "true" if waited else "false",
            "x-pickspin-cold-action": cold.action,
            "x-pickspin-fallback": ",".join(upstream.fallback) or "none",
            "x-pickspin-decision-ms": f"{pick.decision_ms:.2f}",
            "x-pickspin-trade-down": (
                f"relevance_gap={b.relevance_gap:.4f};bound={self._bound(sel.profile)}"),
        }
        if waited and cold.waited is not None:
            reply_headers["x-pickspin-cold-start-ms"] = f"{cold.waited * 1000:.0f}"
        if cold.action == "substitute":
            reply_headers["x-pickspin-woken"] = cold.service
        answer = Answer(request_id, pick, cold, waited)
        if upstream.first_chunk:
            reply_headers["cache-control"] = "no-cache"
            return Relay(self, upstream, answer, reply_headers)
        self._finish(upstream, answer, _usage_tokens(upstream.body))
        return Response(upstream.body, status_code=upstream.status, headers=reply_headers)

    def _bound(self, profile: str) -> str:
        bound = self._bounds.get(profile)
        if bound is None:  # a profile the settings do not list: its default floor
            bound = f"{self.settings.routing.trade_down_for(profile).relevance:.2f}"
        return bound

    def _spin(self, sel: RouteSelected) -> tuple[list[Candidate], ColdOutcome]:
        """The order to try candidates in, when the best one is at zero replicas: the
        profile's plan (`pickspin.coldplan`), executed with real waits."""
        plan = cold_plan(self.settings, sel.profile, sel.chosen, sel.runners_up)
        chosen = plan.chosen
        if plan.action == "none":
            return list(plan.now), ColdOutcome()
        if plan.action == "substitute":
            self.cold.wake(chosen, plan.limit)
            return list(plan.now), ColdOutcome("substitute", chosen.service)
        waited = self.cold.hold(chosen, plan.limit)
        if waited is None:
            return list(plan.after_timeout), ColdOutcome("hold", chosen.service,
                                                         timed_out=True)
        return list(plan.now), ColdOutcome("hold", chosen.service, waited)

    def explain_lost(self, service: str, reason: str, since: float) -> str:
        """A lost connection to `service`: if one of its replicas crashed meanwhile, say so
        (with its signal) instead of the protocol error, and log it. The process may be seen
        dead a moment after its socket closed, so look a few times within `crash_wait`."""
        if self.replicas is None:
            return reason
        deadline = time.monotonic() + self.crash_wait
        while True:
            crash = self.replicas.crash_since(service, since)
            if crash is not None:
                log.warning("backend %s crashed while answering: %s (pid %s); it is being "
                            "replaced", service, crash.description, crash.pid)
                return f"crashed: {crash.description}"
            if time.monotonic() >= deadline:
                return reason
            time.sleep(0.05)

    def _inflight(self, service: str, delta: int) -> None:
        self.metrics.inflight.labels(service).inc(delta)

    async def relay(self, upstream: AsyncUpstream,
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
            self._finish(upstream, answer, upstream.chunks)

    def _finish(self, upstream: AsyncUpstream, answer: Answer, tokens: int) -> None:
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
        self._leave()
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

    def models(self) -> Response:
        created = int(time.time())
        ids = [AUTO_MODEL, *(PROFILE_PREFIX + p for p in self.settings.profiles),
               *(m.name for m in self.settings.models)]
        # an emulated model says so where a client looks (no weights behind it: filler text)
        data = [{"id": i, "object": "model", "created": created,
                 "owned_by": "pickspin-emulated" if i in self._emulated_models else "pickspin"}
                for i in ids]
        return Response(json.dumps({"object": "list", "data": data}),
                        media_type="application/json")

    async def aclose(self) -> None:
        await self.emitter.aclose()
        await self.events.aclose()
        await self.proxy.aclose()

    def close(self) -> None:
        """Release the blocking collaborators (`aclose` releases the event-loop ones)."""
        if self.replicas is not None:
            self.replicas.close()
        self.cold.close()


class Relay(Response):
    """A streamed answer: the headers, then the backend's SSE bytes as they come. Its end,
    however it comes (done, broken off, the client gone), is counted, logged and emitted
    once, and the backend connection released."""

    def __init__(self, gateway: Gateway, upstream: AsyncUpstream, answer: Answer,
                 headers: Mapping[str, str]) -> None:
        self.status_code = upstream.status
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in headers.items()]
        self._body = gateway.relay(upstream, answer)

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


def _usage_tokens(body: bytes) -> int:
    try:
        usage = json.loads(body).get("usage") or {}
        return int(usage.get("completion_tokens", 0))
    except (ValueError, AttributeError, TypeError):
        return 0
