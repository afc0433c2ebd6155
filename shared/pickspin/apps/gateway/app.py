"""The gateway's request path: the OpenAI contract for `/v1/chat/completions`,
`/v1/completions` and `/v1/models` — Pick (classifier and selector over CloudEvents), Spin
(cold holds, substitutes), proxying with fallback, the `x-pickspin-*` headers, metrics and
`inference.completed`. It runs on the event loop (Starlette, no thread per request); the
rare blocking waits (a cold backend, a crash report) go to a thread. Pick's calls are in
`pick.py`, the end of each answer (metrics, events, the streamed relay) in `answers.py`, the
Starlette app and the checks in front of it in `routes.py`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from pickspin.adapters.asynchttp import AsyncEmitter, AsyncEventClient
from pickspin.adapters.replicas import LocalReplicas, ReplicaSource
from pickspin.apps.gateway.answers import Answer, Answers, ColdOutcome
from pickspin.apps.gateway.coldstart import ColdStarts
from pickspin.apps.gateway.metrics import GatewayMetrics
from pickspin.apps.gateway.openai_request import AUTO_MODEL, ParsedRequest, parse, read_body
from pickspin.apps.gateway.pick import PROFILE_PREFIX, Picker
from pickspin.apps.gateway.proxy import UNREACHED, BackendProxy
from pickspin.core.coldplan import ColdPlan, cold_plan, last_hold_seconds
from pickspin.core.errors import BackendFailed
from pickspin.core.events import Candidate, RouteSelected
from pickspin.core.selection import settled_floor
from pickspin.core.settings import Settings

log = logging.getLogger("pickspin.apps.gateway")


@dataclass(frozen=True)
class Wiring:
    """Where the gateway's collaborators are."""

    classifier_url: str
    selector_url: str
    sink: str | None = None
    #: where replica counts and crashes are read (the local scaler's status server)
    replicas_url: str | None = None
    #: the internal token events to the functions are signed with (`pickspin.core.eventauth`)
    token: str | None = None
    #: keys a caller must present as `Authorization: Bearer <key>`; none = open
    api_keys: tuple[str, ...] = ()
    #: requests answered at once; past it a 429 with Retry-After (PICKSPIN_MAX_INFLIGHT)
    max_inflight: int = 256


class Gateway:
    """Everything one gateway process holds: settings, clients, metrics, emitter."""

    def __init__(
        self,
        settings: Settings,
        wiring: Wiring,
        *,
        events: AsyncEventClient | None = None,
        proxy: BackendProxy | None = None,
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
        self.events = events or AsyncEventClient(token=wiring.token)
        self.proxy = proxy or BackendProxy(explain=self.explain_lost)
        self.metrics = metrics or GatewayMetrics(settings)
        self.emitter = emitter or AsyncEmitter(wiring.sink, token=wiring.token)
        self.cold = cold or ColdStarts(settings, self.metrics.pending)
        self.clock = clock
        self.picker = Picker(settings, wiring.classifier_url, wiring.selector_url, self.events,
                             self.metrics.classification, clock=clock, route_wait=route_wait)
        self.answers = Answers(self.metrics, self.emitter, self.explain_lost, self._leave, clock)
        self._emulated = {s.name: s.emulated for s in settings.services}
        self._emulated_models = {m.name for m in settings.models if all(
            s.emulated for s in settings.services if s.model == m.name)}
        self._bounds = {(p, settled): self._bound_of(p, settled)
                        for p in settings.profiles for settled in (False, True)}
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
        pick = await self.picker.pick(request_id, parsed, headers)
        sel = pick.selected
        plan = self._plan(sel)
        if plan.action == "none":
            candidates, cold = list(plan.now), ColdOutcome()
        else:  # wakes or holds for a cold start (blocking, bounded): off the event loop
            candidates, cold = await asyncio.to_thread(self._spin, plan)
        try:
            upstream = await self.proxy.forward(kind, parsed.body, candidates, started,
                                                self._inflight)
        except BackendFailed as exc:
            # nothing listened (a scaler restarting, every replica draining): none of them
            # answered at all, so wait for the chosen one as for a cold start, then retry
            if not exc.reasons or not set(exc.reasons) <= UNREACHED or cold.timed_out:
                raise
            limit = last_hold_seconds(self.settings, sel.profile, candidates[0].service)
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
                f"relevance_gap={b.relevance_gap:.4f};"
                f"bound={self._bound(sel.profile, pick.settled)}"),
        }
        if waited and cold.waited is not None:
            reply_headers["x-pickspin-cold-start-ms"] = f"{cold.waited * 1000:.0f}"
        if cold.action == "substitute":
            reply_headers["x-pickspin-woken"] = cold.service
        return self.answers.response(upstream, Answer(request_id, pick, cold, waited),
                                     reply_headers)

    def _bound(self, profile: str, settled: bool) -> str:
        bound = self._bounds.get((profile, settled))
        if bound is None:  # a profile the settings do not list: its default floor
            bound = self._bound_of(profile, settled)
        return bound

    def _bound_of(self, profile: str, settled: bool) -> str:
        """The relevance bound that applied: the profile's, or for a class the short-prompt
        rule settled, its settled floor's (none, 1.00, where `settledTiers` is set)."""
        rule = self.settings.routing.trade_down_for(profile)
        return f"{(settled_floor(rule) if settled else rule).relevance:.2f}"

    def _plan(self, sel: RouteSelected) -> ColdPlan:
        """The order to try candidates in: the chosen one, the runners-up and the overflow
        when it is warm, else the profile's plan for a cold one (`pickspin.core.coldplan`)."""
        return cold_plan(self.settings, sel.profile, sel.chosen, sel.runners_up, sel.overflow)

    def _spin(self, plan: ColdPlan) -> tuple[list[Candidate], ColdOutcome]:
        """A plan executed with real waits: a wake, or a hold for the chosen service."""
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


