"""pickspin telemetry: `io.pickspin.inference.completed` and PingSource ticks in,
`io.pickspin.telemetry.snapshot` out (replied to the tick and emitted to K_SINK)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, request

from pickspin.cehttp import Emitter, accepted, event_from_request, event_response
from pickspin.events import EventType, InferenceCompleted, data_of, make_event
from pickspin.function import FlaskFunction
from pickspin.probes import BackendProber
from pickspin.settings import Settings
from pickspin.telemetry import Window

SOURCE = "/pickspin/telemetry"


class TelemetryFunction(FlaskFunction):
    window: Window | None = None
    emitter: Emitter | None = None
    prober: BackendProber | None = None

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        self.window = window = Window(settings, float(cfg.get("PICKSPIN_WINDOW_SECONDS", 60)))
        self.emitter = emitter = Emitter(cfg.get("K_SINK") or None)
        self.prober = prober = BackendProber(settings)
        app = Flask("pickspin-telemetry")

        @app.post("/")
        def receive() -> Response:
            event = event_from_request(request, EventType.INFERENCE_COMPLETED, EventType.PING)
            if event.get_type() == EventType.INFERENCE_COMPLETED:
                window.add(data_of(event, InferenceCompleted))
                return accepted()
            snapshot = make_event(EventType.TELEMETRY_SNAPSHOT,
                                  window.snapshot(prober.probe_all()), SOURCE)
            emitter.emit(snapshot)
            return event_response(snapshot)

        return app

    def stop(self) -> None:
        super().stop()
        if self.emitter is not None:
            self.emitter.close()
        if self.prober is not None:
            self.prober.close()


def new() -> TelemetryFunction:
    return TelemetryFunction()
