"""Windowed per-service statistics from `inference.completed` events (pure, clock injected).

The telemetry function keeps one `Window`, adds each completed inference, and on every
PingSource tick turns it into a `TelemetrySnapshot` for the selector. Backend health and
replicas come from probes passed in as plain values.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pickspin.events import InferenceCompleted, ServiceStats, TelemetrySnapshot
from pickspin.scoring import cost_per_query
from pickspin.settings import Settings


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

    def snapshot(self, probes: Mapping[str, Probe] | None = None) -> TelemetrySnapshot:
        now = self.clock()
        probes = probes or {}
        with self._lock:
            recent = self._recent(now)
        services = {}
        for svc in self.settings.services:
            services[svc.name] = self._stats(svc.name, recent.get(svc.name, []),
                                             probes.get(svc.name, Probe()))
        return TelemetrySnapshot(generated_at=now, window_seconds=self.seconds,
                                 services=services)

    def _stats(self, name: str, events: list[InferenceCompleted], probe: Probe) -> ServiceStats:
        base = {"healthy": probe.healthy, "replicas": probe.replicas,
                "ready_replicas": probe.ready_replicas, "running": probe.running,
                "waiting": probe.waiting}
        if not events:
            return ServiceStats(**base)
        ok = [e for e in events if e.outcome == "success"]
        latencies = sorted(e.latency_seconds for e in ok)
        ttfts = sorted(e.ttft_seconds for e in ok if e.ttft_seconds is not None)
        mean = sum(latencies) / len(latencies) if latencies else None
        decode = [(e.latency_seconds - e.ttft_seconds) / (e.completion_tokens - 1) for e in ok
                  if e.ttft_seconds is not None and e.completion_tokens > 1]
        return ServiceStats(
            **base,
            requests=len(events),
            rate_per_second=len(events) / self.seconds,
            latency_seconds=mean,
            latency_p50_seconds=quantile(latencies, 0.5) if latencies else None,
            latency_p99_seconds=quantile(latencies, 0.99) if latencies else None,
            ttft_p50_seconds=quantile(ttfts, 0.5) if ttfts else None,
            ttft_p99_seconds=quantile(ttfts, 0.99) if ttfts else None,
            time_per_token_seconds=sum(decode) / len(decode) if decode else None,
            success_ratio=len(ok) / len(events),
            cost_per_query=(cost_per_query(self.settings.service(name), mean)
                            if mean is not None else None),
        )
