"""Per-service statistics for the selector, one `TelemetrySnapshot` per PingSource tick.

The telemetry function keeps one `Window` of `inference.completed` events (clock injected).
`Telemetry.snapshot()` takes the statistics from Prometheus when a `StatsSource` is given
(`pickspin.adapters.promstats`) and from the window otherwise; health and replicas come
from a `ProbeSource` (health probes or a replica source, `pickspin.adapters.probes`) as
plain `Probe` values.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from pickspin.core.events import InferenceCompleted, ServiceStats, TelemetrySnapshot
from pickspin.core.scoring import cost_per_query
from pickspin.core.settings import Settings


@dataclass(frozen=True)
class Probe:
    """What a look at the backend itself says (health endpoint, engine metrics, scaler)."""

    healthy: bool = True
    replicas: int | None = None
    ready_replicas: int | None = None
    running: int | None = None
    waiting: int | None = None


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class Window:
    """Completed inferences of the last `seconds`, per service. Thread-safe."""

    def __init__(self, settings: Settings, seconds: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.seconds = seconds
        self.clock = clock
        self._events: dict[str, deque[InferenceCompleted]] = {}
        self._lock = threading.Lock()

    def add(self, done: InferenceCompleted) -> None:
        with self._lock:
            self._events.setdefault(done.service, deque()).append(done)

    def _recent(self, now: float) -> dict[str, list[InferenceCompleted]]:
        """Drop what finished before the window (events may arrive slightly out of order)."""
        horizon = now - self.seconds
        recent = {}
        for name, events in self._events.items():
            kept = [e for e in events if e.finished_at >= horizon]
            self._events[name] = deque(kept)
            recent[name] = kept
        return recent

    def stats(self) -> dict[str, ServiceStats]:
        """Statistics of every configured service over the window (no health, no replicas)."""
        with self._lock:
            recent = self._recent(self.clock())
        return {svc.name: self._stats(svc.name, recent.get(svc.name, []))
                for svc in self.settings.services}

    def snapshot(self, probes: Mapping[str, Probe] | None = None) -> TelemetrySnapshot:
        return snapshot_of(self.stats(), probes or {}, self.clock(), self.seconds)

    def _stats(self, name: str, events: list[InferenceCompleted]) -> ServiceStats:
        if not events:
            return ServiceStats()
        ok = [e for e in events if e.outcome == "success"]
        latencies = sorted(e.latency_seconds for e in ok)
        ttfts = sorted(e.ttft_seconds for e in ok if e.ttft_seconds is not None)
        mean = sum(latencies) / len(latencies) if latencies else None
        decode = [(e.latency_seconds - e.ttft_seconds) / (e.completion_tokens - 1) for e in ok
                  if e.ttft_seconds is not None and e.completion_tokens > 1]
        return ServiceStats(
            requests=len(events),
            rate_per_second=len(events) / self.seconds,
            latency_seconds=mean,
            latency_p50_seconds=quantile(latencies, 0.5) if latencies else None,
            latency_p99_seconds=quantile(latencies, 0.99) if latencies else None,
            ttft_seconds=sum(ttfts) / len(ttfts) if ttfts else None,
            ttft_p50_seconds=quantile(ttfts, 0.5) if ttfts else None,
            ttft_p99_seconds=quantile(ttfts, 0.99) if ttfts else None,
            time_per_token_seconds=sum(decode) / len(decode) if decode else None,
            success_ratio=len(ok) / len(events),
            cost_per_query=(cost_per_query(self.settings.service(name), mean)
                            if mean is not None else None),
        )


def with_probe(stats: ServiceStats, probe: Probe) -> ServiceStats:
    """The statistics with what the probe saw (its running/waiting only where it saw them)."""
    update: dict[str, object] = {"healthy": probe.healthy, "replicas": probe.replicas,
                                 "ready_replicas": probe.ready_replicas}
    if probe.running is not None:
        update["running"] = probe.running
    if probe.waiting is not None:
        update["waiting"] = probe.waiting
    return stats.model_copy(update=update)


def with_event_fallbacks(measured: ServiceStats, events: ServiceStats) -> ServiceStats:
    """Prometheus statistics, plus the decode time per token that only events carry."""
    if measured.time_per_token_seconds is None and events.time_per_token_seconds is not None:
        return measured.model_copy(
            update={"time_per_token_seconds": events.time_per_token_seconds})
    return measured


def snapshot_of(stats: Mapping[str, ServiceStats], probes: Mapping[str, Probe], now: float,
                window_seconds: float) -> TelemetrySnapshot:
    """Statistics and probes → the snapshot (pure); a service without a probe is healthy."""
    services = {name: with_probe(s, probes.get(name, Probe())) for name, s in stats.items()}
    return TelemetrySnapshot(generated_at=now, window_seconds=window_seconds,
                             services=services)


class StatsSource(Protocol):
    """Windowed statistics per service from elsewhere (`promstats.PrometheusStats`)."""

    window_seconds: float

    def collect(self) -> dict[str, ServiceStats]: ...

    def close(self) -> None: ...


class ProbeSource(Protocol):
    """Health and replicas per service (`probes.BackendProber`, `probes.ReplicaProber`)."""

    def probe_all(self) -> dict[str, Probe]: ...

    def close(self) -> None: ...


class StatsUnavailable(RuntimeError):
    """A `StatsSource` could not be read this tick (the events window stands in)."""


class Telemetry:
    """What the telemetry function answers a tick with.

    >>> telemetry = Telemetry(Window(settings), BackendProber(settings))  # doctest: +SKIP
    >>> telemetry.snapshot().services["gemma-3-27b-vllm"].healthy         # doctest: +SKIP
    True
    """

    def __init__(self, window: Window, probes: ProbeSource, stats: StatsSource | None = None,
                 log: logging.Logger | None = None) -> None:
        self.window = window
        self.probes = probes
        self.stats = stats
        self.log = log or logging.getLogger("pickspin.core.telemetry")

    def snapshot(self) -> TelemetrySnapshot:
        probes = self.probes.probe_all()
        if self.stats is None:
            return self.window.snapshot(probes)
        events = self.window.stats()
        try:
            measured = self.stats.collect()
        except StatsUnavailable as exc:
            self.log.warning("statistics from events this tick: %s", exc)
            return snapshot_of(events, probes, self.window.clock(), self.window.seconds)
        merged = {name: with_event_fallbacks(measured.get(name, ServiceStats()), from_events)
                  for name, from_events in events.items()}
        return snapshot_of(merged, probes, self.window.clock(), self.stats.window_seconds)

    def close(self) -> None:
        self.probes.close()
        if self.stats is not None:
            self.stats.close()
