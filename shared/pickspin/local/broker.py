"""A local stand-in for the Knative Broker, driven by the chart's own rendered Broker and
Triggers (as the local scaler is driven by the rendered ScaledObjects).

What it does, and the Knative Eventing behaviour it copies (knative/eventing, read for this):
- Ingress: a CloudEvent POSTed in binary or structured mode is accepted with 202; anything
  else gets 400. Every Trigger of the Broker whose filter passes gets its own delivery.
- `spec.filter.attributes` is an exact match on context attributes and extensions; a key the
  event lacks fails the filter, and the value "" matches any value of a present attribute
  (pkg/eventfilter/attributes/filter.go, `TriggerAnyFilter = ""`). An event no Trigger
  passes goes nowhere (kept in `unmatched` here, for inspection). `spec.filters` (the newer
  SQL-like dialects) are not interpreted: a Trigger using them is refused at load.
- Delivery: POST in binary mode with `Prefer: reply`. A failure is retried when the request
  got no answer or the status is 5xx, 404, 408, 409 or 429 (pkg/kncloudevents/retries.go
  `SelectiveRetry`); any other non-2xx is final. Up to `retry` retries, waiting before
  retry n (n = 0, 1, …) `backoffDelay·2ⁿ` (exponential) or `backoffDelay·n` (linear)
  (retries.go `RetryConfigFromDeliverySpec`; go-retryablehttp passes the 0-based attempt;
  eventing's rekt "backoff maximum" test expects 1 s then 2 s for PT1S exponential).
- After the last failure the original event goes to the dead-letter sink, with the same
  retries, carrying `knativeerrordest` (the subscriber), `knativeerrorcode` (its last
  status; 500 when it never answered) and `knativeerrordata` (its body, base64, at most
  1024 characters) (pkg/kncloudevents/event_dispatcher.go, pkg/channel/attributes). No
  dead-letter sink: the event is dropped.
- A 2xx answer that is a CloudEvent is a reply: it goes back into the Broker (ingress).
- A Trigger's own `delivery` replaces the Broker's (Knative docs: the Broker's DeliverySpec
  applies to every Trigger that has none of its own).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.errors import InvalidEvent
from pickspin.core.events import decode, encode
from pickspin.core.replyto import retryable
from pickspin.core.settings import Settings
from pickspin.local.delivery import (
    ERROR_CODE,
    ERROR_DATA,
    ERROR_DATA_MAX,
    ERROR_DEST,
    Attempt,
    Route,
    delivery_of,
    destination,
)

KNATIVE_CHART = Path(__file__).resolve().parents[3] / "knative"
log = logging.getLogger("pickspin.broker")


@dataclass
class LocalBroker:
    """Routes events as the rendered Triggers say, with their delivery settings."""

    routes: Sequence[Route]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=330.0))
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    attempts: list[Attempt] = field(default_factory=list)
    unmatched: list[CloudEvent] = field(default_factory=list)
    #: Triggers whose subscriber this run does not know (not Ready: they get nothing)
    unready: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="broker")
        self._inflight: list[Future[None]] = []
        self._server: ThreadingHTTPServer | None = None

    @classmethod
    def from_objects(cls, objects: Sequence[Mapping[str, Any]], services: Mapping[str, str],
                     broker: str = "default", **kwargs: Any) -> LocalBroker:
        """From rendered objects; `services` maps a Service name (a Trigger's or a sink's
        `ref.name`) to the URL it listens on here."""
        found = [o for o in objects if o.get("kind") == "Broker"
                 and o["metadata"]["name"] == broker]
        if not found:
            raise ValueError(f"no Broker named {broker!r} among the rendered objects")
        default = delivery_of(found[0]["spec"].get("delivery") or {}, services)
        routes, unready = [], []
        for trigger in (o for o in objects if o.get("kind") == "Trigger"):
            spec, name = trigger["spec"], trigger["metadata"]["name"]
            if spec.get("broker") != broker:
                continue
            if spec.get("filters"):
                raise ValueError(f"Trigger {name}: spec.filters is not interpreted here")
            url = destination(spec["subscriber"], services)
            if url is None:
                unready.append(name)
                continue
            delivery = (delivery_of(spec["delivery"], services) if spec.get("delivery")
                        else default)
            routes.append(Route(name, dict((spec.get("filter") or {}).get("attributes") or {}),
                                url, delivery))
        made = cls(routes, **kwargs)
        made.unready.extend(unready)
        return made

    # ---- routing -----------------------------------------------------------------------
    def publish(self, event: CloudEvent) -> int:
        """Deliver the event to every Trigger it passes (in the background); how many."""
        matched = [r for r in self.routes if r.passes(event)]
        if not matched:
            with self._lock:
                self.unmatched.append(event)
        for route in matched:
            future = self._pool.submit(self.deliver, route, event)
            with self._lock:
                self._inflight.append(future)
        return len(matched)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no delivery is in flight, the replies they re-inject included."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._inflight = [f for f in self._inflight if not f.done()]
                pending = list(self._inflight)
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(pending)} deliveries still in flight")
            wait(pending, timeout=left)

    def deliver(self, route: Route, event: CloudEvent) -> None:
        """Deliver one event to one Trigger's subscriber, as the Broker does (blocking)."""
        try:
            status, answer = self._send(route, route.subscriber, event)
            if status is not None and 200 <= status < 300:
                reply = _reply_of(answer)
                if reply is not None:
                    self.publish(reply)  # a reply goes back into the Broker
                return
            sink = route.delivery.dead_letter
            if sink is None:
                log.warning("trigger %s: %s %s undeliverable (%s), no dead-letter sink: dropped",
                            route.name, event.get_type(), event.get_id(), status)
                return
            body = answer.content if answer is not None else b"dispatch error: no answer"
            data = base64.b64encode(body).decode()[:ERROR_DATA_MAX]
            dead = CloudEvent({**event.get_attributes(), ERROR_DEST: route.subscriber,
                               ERROR_CODE: str(status if status is not None else 500),
                               ERROR_DATA: data}, event.get_data())
            status, _ = self._send(route, sink, dead, dead_letter=True)
            if status is None or not 200 <= status < 300:
                log.warning("trigger %s: the dead-letter sink did not take %s (%s): lost",
                            route.name, event.get_id(), status)
        except Exception:
            log.exception("trigger %s: dispatching %s failed", route.name, event.get_id())

    def _send(self, route: Route, url: str, event: CloudEvent, dead_letter: bool = False
              ) -> tuple[int | None, httpx.Response | None]:
        """POST with the route's retries; the last status (None: never answered)."""
        message = encode(event)
        headers = {**message.headers, "prefer": "reply"}
        status: int | None = None
        answer: httpx.Response | None = None
        for n in range(route.delivery.retry + 1):
            try:
                answer = self.http.post(url, content=message.body, headers=headers)
                status = answer.status_code
            except httpx.HTTPError:
                answer, status = None, None
            with self._lock:
                self.attempts.append(Attempt(route.name, url, str(event.get_type()),
                                             str(event.get_id()), status, self.clock(),
                                             dead_letter))
            if status is not None and 200 <= status < 300:
                break
            if not retryable(status) or n == route.delivery.retry:
                break
            self.sleep(route.delivery.backoff(n))
        return status, answer

    # ---- ingress -----------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen for producers (any path); returns the ingress URL."""
        broker = self

        class Ingress(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    event = decode(dict(self.headers.items()), body)
                except InvalidEvent as exc:
                    self._answer(400, exc.message.encode())
                    return
                broker.publish(event)
                self._answer(202, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._server = ThreadingHTTPServer((host, port), Ingress)
        threading.Thread(target=self._server.serve_forever, name="broker-ingress",
                         daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.http.close()


def _reply_of(answer: httpx.Response | None) -> CloudEvent | None:
    """The CloudEvent in a subscriber's answer, if it is one (else the answer is dropped)."""
    if answer is None or (not answer.content and "ce-type" not in answer.headers):
        return None
    try:
        return decode(dict(answer.headers), answer.content)
    except InvalidEvent:
        return None


def render(settings: Settings, values: Mapping[str, Any] | None = None,
           chart: Path = KNATIVE_CHART) -> list[dict[str, Any]]:
    """Render the knative chart (Helm v4 as a library) and return its objects."""
    import helm_python

    merged = {"global": {"pickspin": settings.dump()}, **(values or {})}
    with helm_python.Chart.load(str(chart)) as loaded:
        manifests = loaded.render(merged, name="pickspin", namespace="pickspin")
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text)
            if isinstance(doc, dict)]
