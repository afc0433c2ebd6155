"""pickspin telemetry: `io.pickspin.inference.completed` and PingSource ticks in,
`io.pickspin.telemetry.snapshot` out (replied to the tick and emitted to K_SINK).
A selector replica's `io.pickspin.telemetry.requested` is answered with the latest snapshot,
computed again only when the cached one is older than the replica asks for.

A func-python CloudEvent function (`invoke: cloudevent`). Where the numbers come from is
chosen in `start(cfg)`:
- `PICKSPIN_PROMETHEUS_URL` set: windowed statistics from Prometheus (the gateway's
  `pickspin_*` metrics); otherwise from the `inference.completed` events the function keeps.
- `PICKSPIN_REPLICAS_URL` set: replicas and readiness from the local scaler; else, in a
  cluster (`KUBERNETES_SERVICE_HOST`), from each service's Deployment; else health probes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.cehttp import Emitter
from pickspin.adapters.function import EventFunction, EventHandler
from pickspin.adapters.probes import BackendProber, ReplicaProber
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.events import (
    EventType,
    InferenceCompleted,
    TelemetryRequested,
    TelemetrySnapshot,
    data_of,
    make_event,
)
from pickspin.core.settings import Settings
from pickspin.core.telemetry import ProbeSource, StatsSource, Telemetry, Window

SOURCE = "/pickspin/telemetry"


def probe_source(settings: Settings, cfg: Mapping[str, str]) -> ProbeSource:
    """Local scaler, else the Kubernetes API, else health probes (each falls back to probes)."""
    probes = BackendProber(settings)
    if cfg.get("PICKSPIN_REPLICAS_URL"):
        from pickspin.adapters.replicas import LocalReplicas

        return ReplicaProber(settings, LocalReplicas(cfg["PICKSPIN_REPLICAS_URL"]), probes)
    if cfg.get("KUBERNETES_SERVICE_HOST"):
        from pickspin.adapters.replicas import KubeReplicas

        namespace = cfg.get("POD_NAMESPACE") or None
        return ReplicaProber(settings, KubeReplicas(settings, namespace=namespace), probes)
    return probes


def stats_source(settings: Settings, cfg: Mapping[str, str],
                 window_seconds: float) -> StatsSource | None:
    url = cfg.get("PICKSPIN_PROMETHEUS_URL")
    if not url:
        return None
    from pickspin.adapters.promstats import PrometheusStats

    return PrometheusStats.connect(url, settings, window_seconds)


class TelemetryFunction(EventFunction):
    telemetry: Telemetry | None = None
    emitter: Emitter | None = None
    latest: TelemetrySnapshot | None = None

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._computing = threading.Lock()

    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        window = Window(settings, float(cfg.get("PICKSPIN_WINDOW_SECONDS", 60)))
        self.telemetry = Telemetry(
            window, probe_source(settings, cfg), stats_source(settings, cfg, window.seconds))
        self.emitter = Emitter(cfg.get("K_SINK") or None, token=cfg.get(TOKEN_ENV))
        return {EventType.INFERENCE_COMPLETED: self.record, EventType.PING: self.tick,
                EventType.TELEMETRY_REQUESTED: self.answer}

    async def record(self, event: CloudEvent) -> None:
        assert self.telemetry is not None
        self.telemetry.window.add(data_of(event, InferenceCompleted))

    async def tick(self, event: CloudEvent) -> CloudEvent:
        """A fresh snapshot (Prometheus and probes: off the event loop), emitted and replied."""
        assert self.emitter is not None
        snapshot = await asyncio.to_thread(self.snapshot_within, None)
        reply = make_event(EventType.TELEMETRY_SNAPSHOT, snapshot, SOURCE)
        self.emitter.emit(reply)
        return reply

    async def answer(self, event: CloudEvent) -> CloudEvent:
        max_age = data_of(event, TelemetryRequested).max_age_seconds
        snapshot = self._cached(max_age)  # the common case: answered on the event loop
        if snapshot is None:
            snapshot = await asyncio.to_thread(self.snapshot_within, max_age)
        return make_event(EventType.TELEMETRY_SNAPSHOT, snapshot, SOURCE)

    def snapshot_within(self, max_age: float | None) -> TelemetrySnapshot:
        """The cached snapshot if at most `max_age` old, else a new one (None: always new).
        One computation at a time: replicas asking together share it."""
        assert self.telemetry is not None
        with self._computing:
            if max_age is not None and (cached := self._cached(max_age)) is not None:
                return cached
            self.latest = self.telemetry.snapshot()
            return self.latest

    def _cached(self, max_age: float) -> TelemetrySnapshot | None:
        assert self.telemetry is not None
        latest = self.latest
        if latest is None or self.telemetry.window.clock() - latest.generated_at > max_age:
            return None
        return latest

    def stop(self) -> None:
        super().stop()
        if self.emitter is not None:
            self.emitter.close()
        if self.telemetry is not None:
            self.telemetry.close()


def new() -> TelemetryFunction:
    return TelemetryFunction()
