"""Warm-aware Pick at the gateway: hold a request for a cold backend, or wake it while a
warm substitute serves. Either way `pickspin_pending_requests{service}` rises while the
backend is cold, which is the signal the ScaledObject activates on (KEDA cannot see demand
for a Deployment at zero replicas any other way)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from prometheus_client import Gauge

from pickspin.core.events import Candidate
from pickspin.core.settings import Settings


class ColdStarts:
    def __init__(self, settings: Settings, pending: Gauge, http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.monotonic, poll_seconds: float = 0.1) -> None:
        self.settings = settings
        self.pending = pending
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._http = http or httpx.Client(timeout=1.0)
        self._waking: set[str] = set()
        self._lock = threading.Lock()

    def _ready(self, candidate: Candidate) -> bool:
        health = self.settings.backend(candidate.backend).health_path
        try:
            return self._http.get(candidate.endpoint.rstrip("/") + health).status_code == 200
        except httpx.HTTPError:
            return False

    def hold(self, candidate: Candidate, limit: float) -> float | None:
        """Wait (bounded) until the backend is ready; seconds waited, or None on timeout."""
        start = self.clock()
        gauge = self.pending.labels(candidate.service)
        gauge.inc()
        try:
            while not self._ready(candidate):
                if self.clock() - start >= limit:
                    return None
                time.sleep(self.poll_seconds)
            return self.clock() - start
        finally:
            gauge.dec()

    def wake(self, candidate: Candidate, limit: float) -> bool:
        """Signal demand for a cold backend in the background; False if already waking."""
        with self._lock:
            if candidate.service in self._waking:
                return False
            self._waking.add(candidate.service)

        def run() -> None:
            try:
                self.hold(candidate, limit)
            finally:
                with self._lock:
                    self._waking.discard(candidate.service)

        threading.Thread(target=run, name=f"wake-{candidate.service}", daemon=True).start()
        return True

    def close(self) -> None:
        self._http.close()
