"""The broker path's last hop: answer a `route.selected` that carries a prompt and deliver
the answer as `io.pickspin.prompt.answered` to the sink the producer named.

    producer ──prompt.received + pickspinreplyto──▶ Broker ─Trigger─▶ classifier
    Broker ◀─reply prompt.classified─ classifier;  Broker ─Trigger─▶ selector
    Broker ◀─reply route.selected─ selector;       Broker ─Trigger─▶ responder
    responder ──POST chat completion──▶ chosen backend (Spin when cold, fallback)
    responder ──prompt.answered──▶ the producer's sink
    Broker ◀─reply inference.completed─ responder  (─Trigger─▶ telemetry)

What fails, and what the Broker then does (Knative retries 5xx, 404, 408, 409 and 429 and
sends other failures straight to the dead-letter sink):
- no or a malformed `pickspinreplyto`, no prompt carried, bad data: 400, dead letter;
- no candidate backend answered at all: 502 (`BackendFailed`), retried, then dead letter;
- the backend refused the prompt (4xx): an answer with `outcome: error` goes to the sink;
- the sink unreachable or answering 5xx/404/408/409/429: 502, retried, then dead letter;
  the replica keeps the undelivered answer (`Undelivered`), so a redelivery it receives
  sends that answer again instead of asking the backend again (another replica asks anew);
  any other refusal by the sink: 422, dead letter.

Spin is the gateway's: the profile's plan for a cold choice (`pickspin.core.coldplan`: hold the
prompt for the cold backend, or answer from a warm substitute of the same or a higher tier
and wake it), executed with the gateway's `ColdStarts` (on a thread: a hold waits), whose
`pickspin_pending_requests` gauge is what the ScaledObjects activate on; the backends are
called through the gateway's `BackendProxy`, on the event loop (same fallback and
stale-connection rules); the answer is counted in the gateway's `pickspin_*` metrics
(`GatewayMetrics`), which the responder serves on its own metrics port for Prometheus, so
broker-path demand scales the backends as HTTP demand does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.cehttp import EventClient
from pickspin.apps.gateway.coldstart import ColdStarts
from pickspin.apps.gateway.metrics import GatewayMetrics
from pickspin.apps.gateway.proxy import BackendProxy, Upstream
from pickspin.core.coldplan import ColdPlan, cold_plan
from pickspin.core.errors import InvalidEvent, PickspinError
from pickspin.core.events import (
    AnswerError,
    Ask,
    Candidate,
    EventType,
    InferenceCompleted,
    PromptAnswered,
    RouteSelected,
    Usage,
    data_of,
    make_event,
)
from pickspin.core.replyto import retryable, sink_of
from pickspin.core.settings import Settings

SOURCE = "/pickspin/responder"
#: seconds a backend may take to answer one non-streamed completion
DEFAULT_ANSWER_SECONDS = 120.0
# what Knative's broker retries (knative/eventing pkg/kncloudevents/retries.go SelectiveRetry)
log = logging.getLogger("pickspin.apps.responder")


class SinkFailed(PickspinError):
    """The producer's sink could not take the answer now: the Broker retries the hop."""

    status = 502
    type = "upstream_error"
    code = "sink_failed"


class SinkRefused(PickspinError):
    """The producer's sink refused the answer for good: the event goes to the dead letters."""

    status = 422
    type = "invalid_request_error"
    code = "sink_refused"


class Undelivered:
    """Answers whose sink failed, by the id of the event they answer, for a while: the
    Broker redelivers the same event (same source and id), which then needs no new answer.
    Bounded in count and age; per replica."""

    def __init__(self, capacity: int = 256, max_age: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.max_age, self.clock = capacity, max_age, clock
        self._kept: OrderedDict[tuple[str, str], tuple[float, CloudEvent, CloudEvent]] = (
            OrderedDict())
        self._lock = threading.Lock()

    @staticmethod
    def key(event: CloudEvent) -> tuple[str, str]:
        return str(event.get_source()), str(event.get_id())

    def keep(self, event: CloudEvent, answer: CloudEvent, reply: CloudEvent) -> None:
        with self._lock:
            self._kept[self.key(event)] = (self.clock(), answer, reply)
            self._kept.move_to_end(self.key(event))
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)

    def take(self, event: CloudEvent) -> tuple[CloudEvent, CloudEvent] | None:
        """The kept (answer, reply) for this event, if fresh; it stays kept until delivered."""
        with self._lock:
            kept = self._kept.get(self.key(event))
            if kept is None or self.clock() - kept[0] > self.max_age:
                self._kept.pop(self.key(event), None)
                return None
            return kept[1], kept[2]

    def delivered(self, event: CloudEvent) -> None:
        with self._lock:
            self._kept.pop(self.key(event), None)


def chat_body(ask: Ask) -> dict[str, Any]:
    """The OpenAI chat request for one prompt, not streamed (`model` is set per candidate)."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": ask.prompt}],
                            "stream": False}
    if ask.max_tokens is not None:
        body["max_tokens"] = ask.max_tokens
    if ask.temperature is not None:
        body["temperature"] = ask.temperature
    return body


def read_answer(upstream: Upstream) -> tuple[str | None, str | None, Usage, AnswerError | None]:
    """(text, finish_reason, usage, error) from a backend's non-streamed answer."""
    try:
        doc = json.loads(upstream.body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if upstream.status >= 400:
        error = doc.get("error") if isinstance(doc, dict) else None
        if not isinstance(error, dict):
            error = {"message": upstream.body[:300].decode(errors="replace")}
        return None, None, Usage(), AnswerError(
            message=str(error.get("message") or f"the backend answered {upstream.status}"),
            type=str(error.get("type") or "upstream_error"),
            code=None if error.get("code") is None else str(error.get("code")),
            status=upstream.status)
    try:
        choice = doc["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not text")
        usage = doc.get("usage") or {}
        counted = Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                        completion_tokens=int(usage.get("completion_tokens") or 0))
        finish = choice.get("finish_reason")
        return text, None if finish is None else str(finish), counted, None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None, None, Usage(), AnswerError(
            message="the backend answered without a chat completion", type="upstream_error",
            code="bad_backend_answer", status=upstream.status)


class Responder:
    """Answers broker-path `route.selected` events on the event loop; the cold plan's waits
    and the delivery to the sink (blocking HTTP) run on threads."""

    def __init__(self, settings: Settings, *, proxy: BackendProxy | None = None,
                 sinks: EventClient | None = None, token: str | None = None,
                 answer_seconds: float = DEFAULT_ANSWER_SECONDS,
                 metrics: GatewayMetrics | None = None, cold: ColdStarts | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 wall: Callable[[], float] = time.time,
                 undelivered: Undelivered | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or GatewayMetrics(settings)
        self.cold = cold or ColdStarts(settings, self.metrics.pending)
        self.proxy = proxy or BackendProxy(first_token_timeout=answer_seconds)
        self.sinks = sinks or EventClient(timeout=10.0, token=token)
        self.clock = clock
        self.wall = wall
        self.undelivered = undelivered or Undelivered()

    async def answer(self, event: CloudEvent) -> CloudEvent:
        """Ask the backend, deliver `prompt.answered` to the sink; reply `inference.completed`."""
        selected = data_of(event, RouteSelected)
        sink = sink_of(event)  # 400 before any work when the return address is unusable
        if (kept := self.undelivered.take(event)) is not None:  # a redelivery: answered
            await asyncio.to_thread(self.deliver, sink, kept[0])
            self.undelivered.delivered(event)
            return kept[1]
        if selected.ask is None:
            raise InvalidEvent("this route.selected carries no prompt: the responder answers "
                               "only prompts that entered through the Broker with a "
                               "pickspinreplyto sink")
        started = self.clock()
        plan = cold_plan(self.settings, selected.profile, selected.chosen, selected.runners_up,
                         selected.overflow)
        candidates = list(plan.now) if plan.action == "none" else \
            await asyncio.to_thread(self.spin, selected.request_id, plan)  # a hold waits
        upstream = await self.proxy.forward("chat", chat_body(selected.ask), candidates,
                                            started, self._inflight)  # BackendFailed: 502
        latency = self.clock() - started
        text, finish, usage, error = read_answer(upstream)
        chosen = upstream.candidate
        self._count(selected, chosen, "success" if error is None else "error", latency)
        answered = PromptAnswered(
            request_id=selected.request_id, outcome="success" if error is None else "error",
            text=text, finish_reason=finish, usage=usage, error=error,
            service=chosen.service, model=chosen.model, backend=chosen.backend,
            profile=selected.profile, complexity=selected.complexity, router=selected.router,
            score=chosen.breakdown.score, fallback=tuple(upstream.fallback),
            latency_seconds=latency, finished_at=self.wall())
        answer = make_event(EventType.PROMPT_ANSWERED, answered, SOURCE,
                            subject=selected.request_id)
        done = InferenceCompleted(
            request_id=selected.request_id, service=chosen.service, model=chosen.model,
            backend=chosen.backend, outcome=answered.outcome, latency_seconds=latency,
            completion_tokens=usage.completion_tokens, fallback=answered.fallback,
            finished_at=answered.finished_at)
        reply = make_event(EventType.INFERENCE_COMPLETED, done, SOURCE)
        try:
            await asyncio.to_thread(self.deliver, sink, answer)
        except SinkFailed:
            self.undelivered.keep(event, answer, reply)  # for the Broker's redelivery
            raise
        return reply

    def spin(self, request_id: str, plan: ColdPlan) -> list[Candidate]:
        """A plan for a cold choice (`pickspin.core.coldplan`) executed with real waits, as the
        gateway executes it: the order to try candidates in."""
        if plan.action == "substitute":
            self.cold.wake(plan.chosen, plan.limit)  # pending demand while a warm one answers
        elif plan.action == "hold" and self.cold.hold(plan.chosen, plan.limit) is None:
            log.warning("request %s: %s not ready within %.0f s; trying the others",
                        request_id, plan.chosen.service, plan.limit)
            return list(plan.after_timeout)
        return list(plan.now)

    def _inflight(self, service: str, delta: int) -> None:
        self.metrics.inflight.labels(service).inc(delta)

    def _count(self, selected: RouteSelected, chosen: Candidate, outcome: str,
               latency: float) -> None:
        """The gateway's metrics for one answer (the demand the ScaledObjects read)."""
        self.metrics.inflight.labels(chosen.service).dec()
        self.metrics.requests.labels(chosen.model, chosen.backend, outcome).inc()
        self.metrics.duration.labels(chosen.model, chosen.backend).observe(latency)
        self.metrics.decisions.labels(selected.router, selected.complexity, chosen.model,
                                      chosen.backend).inc()

    def deliver(self, sink: str, answer: CloudEvent) -> None:
        """POST the answer (signed) to the sink; map a failure to what the Broker should do."""
        try:
            status = self.sinks.send(sink, answer)
        except httpx.HTTPError as exc:
            log.warning("could not deliver the answer to %s: %s", sink, type(exc).__name__)
            raise SinkFailed("the reply sink did not take the answer",
                             detail=f"{sink}: {type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            return
        log.warning("the reply sink %s answered %d", sink, status)
        if retryable(status):
            raise SinkFailed(f"the reply sink answered {status}", detail=sink)
        raise SinkRefused(f"the reply sink refused the answer with {status}", detail=sink)

    async def aclose(self) -> None:
        """Release the backend connections (the proxy's session belongs to the event loop)."""
        await self.proxy.aclose()

    def close(self) -> None:
        """Release the blocking collaborators (`aclose` releases the event-loop one)."""
        self.cold.close()
        self.sinks.close()
