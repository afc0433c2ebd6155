"""Look at each backend directly: is its health endpoint answering?"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from pickspin.settings import Service, Settings
from pickspin.telemetry import Probe


class BackendProber:
    def __init__(self, settings: Settings, http: httpx.Client | None = None,
                 timeout: float = 1.0) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=timeout)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pickspin-probe")

    def probe(self, service: Service) -> Probe:
        if not service.endpoint:
            return Probe(healthy=False)
        health = self.settings.backend(service.backend).health_path
        try:
            answer = self._http.get(service.endpoint.rstrip("/") + health)
        except httpx.HTTPError:
            return Probe(healthy=False)
        return Probe(healthy=answer.status_code == 200)

    def probe_all(self) -> dict[str, Probe]:
        services = self.settings.services
        return dict(zip((s.name for s in services), self._pool.map(self.probe, services),
                        strict=True))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()
