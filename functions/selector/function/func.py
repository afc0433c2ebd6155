"""pickspin selector: `io.pickspin.prompt.classified` in, `io.pickspin.route.selected` out;
`io.pickspin.telemetry.snapshot` updates the statistics it normalises over."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from flask import Flask, Response, request

from pickspin.cehttp import EventClient, accepted, event_from_request, event_response
from pickspin.errors import PickspinError
from pickspin.events import (
    EventType,
    PromptClassified,
    RouteSelected,
    TelemetrySnapshot,
    data_of,
    make_event,
)
from pickspin.function import FlaskFunction
from pickspin.selection import select
from pickspin.settings import Settings

SOURCE = "/pickspin/selector"
log = logging.getLogger("pickspin.selector")


class SelectorFunction(FlaskFunction):
    workers = 32
    snapshot: TelemetrySnapshot | None = None

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        if cfg.get("PICKSPIN_TELEMETRY_URL"):
            self.snapshot = bootstrap(cfg["PICKSPIN_TELEMETRY_URL"])
        app = Flask("pickspin-selector")

        @app.post("/")
        def receive() -> Response:
            event = event_from_request(
                request, EventType.PROMPT_CLASSIFIED, EventType.TELEMETRY_SNAPSHOT
            )
            if event.get_type() == EventType.TELEMETRY_SNAPSHOT:
                snapshot = data_of(event, TelemetrySnapshot)
                if self.snapshot is None or snapshot.generated_at >= self.snapshot.generated_at:
                    self.snapshot = snapshot  # one reference swap: readers see old or new
                return accepted()
            start = time.perf_counter()
            classified = data_of(event, PromptClassified)
            route = classified.route
            stats = self.snapshot.services if self.snapshot else {}
            decision = select(
                settings, stats, classified.probabilities, profile=route.profile,
                model=route.model, strategy=route.strategy, exclude=route.exclude,
            )
            selected = RouteSelected(
                request_id=classified.request_id,
                profile=decision.profile,
                strategy=decision.strategy.value,
                complexity=classified.complexity,
                router=classified.router,
                chosen=decision.chosen,
                runners_up=decision.runners_up,
                elapsed_ms=(time.perf_counter() - start) * 1000,
            )
            return event_response(make_event(EventType.ROUTE_SELECTED, selected, SOURCE))

        return app


def bootstrap(telemetry_url: str, client: EventClient | None = None) -> TelemetrySnapshot | None:
    """After its own cold start, ask telemetry for a fresh snapshot (one tick, answered at
    once) instead of choosing blind until the next PingSource tick; None if it is down."""
    client = client or EventClient(timeout=5.0)
    try:
        reply = client.request(telemetry_url, make_event(EventType.PING, {"bootstrap": True},
                                                         SOURCE), EventType.TELEMETRY_SNAPSHOT)
        return data_of(reply, TelemetrySnapshot)
    except PickspinError as exc:
        log.warning("no telemetry snapshot at start (%s); using priors until one arrives",
                    exc.message)
        return None
    finally:
        client.close()


def new() -> SelectorFunction:
    return SelectorFunction()
