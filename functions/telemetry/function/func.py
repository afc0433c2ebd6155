"""pickspin telemetry: `io.pickspin.inference.completed` and PingSource ticks in,
`io.pickspin.telemetry.snapshot` out (replied to the tick and emitted to K_SINK).

Where the numbers come from is chosen in `start(cfg)`:
- `PICKSPIN_PROMETHEUS_URL` set: windowed statistics from Prometheus (the gateway's
  `pickspin_*` metrics); otherwise from the `inference.completed` events the function keeps.
- `PICKSPIN_REPLICAS_URL` set: replicas and readiness from the local scaler; else, in a
  cluster (`KUBERNETES_SERVICE_HOST`), from each service's Deployment; else health probes.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, request

from pickspin.cehttp import Emitter, accepted, event_from_request, event_response
from pickspin.events import EventType, InferenceCompleted, data_of, make_event
from pickspin.function import FlaskFunction
from pickspin.probes import BackendProber, ReplicaProber
from pickspin.settings import Settings
from pickspin.telemetry import ProbeSource, StatsSource, Telemetry, Window

SOURCE = "/pickspin/telemetry"


def probe_source(settings: Settings, cfg: Mapping[str, str]) -> ProbeSource:
    """Local scaler, else the Kubernetes API, else health probes (each falls back to probes)."""
    probes = BackendProber(settings)
    if cfg.get("PICKSPIN_REPLICAS_URL"):
        from pickspin.replicas import LocalReplicas

        return ReplicaProber(settings, LocalReplicas(cfg["PICKSPIN_REPLICAS_URL"]), probes)
    if cfg.get("KUBERNETES_SERVICE_HOST"):
        from pickspin.replicas import KubeReplicas

        namespace = cfg.get("POD_NAMESPACE") or None
        return ReplicaProber(settings, KubeReplicas(settings, namespace=namespace), probes)
    return probes


def stats_source(settings: Settings, cfg: Mapping[str, str],
                 window_seconds: float) -> StatsSource | None:
    url = cfg.get("PICKSPIN_PROMETHEUS_URL")
    if not url:
        return None
    from pickspin.promstats import PrometheusStats

    return PrometheusStats.connect(url, settings, window_seconds)


class TelemetryFunction(FlaskFunction):
    telemetry: Telemetry | None = None
    emitter: Emitter | None = None

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        window = Window(settings, float(cfg.get("PICKSPIN_WINDOW_SECONDS", 60)))
        self.telemetry = telemetry = Telemetry(
            window, probe_source(settings, cfg), stats_source(settings, cfg, window.seconds))
        self.emitter = emitter = Emitter(cfg.get("K_SINK") or None)
        app = Flask("pickspin-telemetry")

        @app.post("/")
        def receive() -> Response:
            event = event_from_request(request, EventType.INFERENCE_COMPLETED, EventType.PING)
            if event.get_type() == EventType.INFERENCE_COMPLETED:
                window.add(data_of(event, InferenceCompleted))
                return accepted()
            snapshot = make_event(EventType.TELEMETRY_SNAPSHOT, telemetry.snapshot(), SOURCE)
            emitter.emit(snapshot)
            return event_response(snapshot)

        return app

    def stop(self) -> None:
        super().stop()
        if self.emitter is not None:
            self.emitter.close()
        if self.telemetry is not None:
            self.telemetry.close()


def new() -> TelemetryFunction:
    return TelemetryFunction()
