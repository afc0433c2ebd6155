"""Health and replicas of each backend, as `Probe` values for the snapshot.

`BackendProber` asks each backend's health endpoint (no scaler to ask). `ReplicaProber`
asks a replica source (the Kubernetes API or the local scaler) and falls back to the
health probes on a tick where that source cannot be read.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx

from pickspin.adapters.engine_stats import EngineStats
from pickspin.adapters.replicas import ReplicaSource, ReplicaSourceError, probe_from
from pickspin.core.settings import BackendKind, Service, Settings
from pickspin.core.telemetry import Probe, ProbeSource

KEEPALIVE_SECONDS = 120.0


def _count(value: float | None) -> int | None:
    return None if value is None else round(value)


class BackendProber:
    """Health endpoints, judged like a readiness probe: a refused connection counts at once
    (nothing listens), while a slow or failing answer must repeat `failure_threshold` times
    in a row before the service counts as unhealthy, so one busy moment does not take a
    backend out of the candidates."""

    def __init__(self, settings: Settings, http: httpx.Client | None = None,
                 timeout: float = 1.0, failure_threshold: int = 3) -> None:
        self.settings = settings
        self.failure_threshold = failure_threshold
        # connections kept open across ticks: httpx closes idle ones after 5 s, the local
        # tick, so every tick would connect to every backend again
        self._http = http or httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_keepalive_connections=64,
                                                 keepalive_expiry=KEEPALIVE_SECONDS))
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pickspin-probe")
        self._failures: dict[str, int] = {}

    def probe(self, service: Service) -> Probe:
        if not service.endpoint:
            return Probe(healthy=False)
        backend = self.settings.backend(service.backend)
        base = service.endpoint.rstrip("/")
        try:
            answer = self._http.get(base + backend.health_path)
            ok = answer.status_code == 200
        except httpx.ConnectError:
            self._failures[service.name] = self.failure_threshold
            return Probe(healthy=False)
        except httpx.HTTPError:
            ok = False
        failures = 0 if ok else self._failures.get(service.name, 0) + 1
        self._failures[service.name] = failures
        load = self._engine(base + backend.metrics_path, backend.kind) if ok else EngineStats()
        return Probe(healthy=failures < self.failure_threshold,
                     running=_count(load.running), waiting=_count(load.waiting))

    def _engine(self, url: str, kind: BackendKind) -> EngineStats:
        """Requests the engine is running and queueing, from its own metrics under its real
        names (what the selector's free-capacity check needs); nothing when unreadable."""
        try:
            return EngineStats.from_scrape(kind, self._http.get(url).text)
        except (httpx.HTTPError, ValueError):
            return EngineStats()

    def probe_all(self) -> dict[str, Probe]:
        services = self.settings.services
        return dict(zip((s.name for s in services), self._pool.map(self.probe, services),
                        strict=True))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()


class ReplicaProber:
    """Probes from a replica source: at zero replicas healthy but cold, unknown unhealthy."""

    def __init__(self, settings: Settings, source: ReplicaSource, fallback: ProbeSource,
                 log: logging.Logger | None = None) -> None:
        self.settings = settings
        self.source = source
        self.fallback = fallback
        self.log = log or logging.getLogger("pickspin.core.telemetry")

    def probe_all(self) -> dict[str, Probe]:
        try:
            counts = self.source.replicas()
        except ReplicaSourceError as exc:
            self.log.warning("health probes this tick, replicas unknown: %s", exc)
            return self.fallback.probe_all()
        return {svc.name: probe_from(counts.get(svc.name)) for svc in self.settings.services}

    def close(self) -> None:
        self.source.close()
        self.fallback.close()
