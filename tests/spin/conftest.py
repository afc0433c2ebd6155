"""Fixtures of the Spin tests: a real local Prometheus and a metrics endpoint to scrape."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pickspin.local.processes import free_port, stop, wait_http
from pickspin.local.prometheus import start_prometheus, write_config


@dataclass(frozen=True)
class MetricsEndpoint:
    address: str
    path: str


@pytest.fixture
def serve_metrics() -> Iterator[Callable[[CollectorRegistry, str], MetricsEndpoint]]:
    """Serve a prometheus_client registry at one path only (any other path is a 404)."""
    servers: list[ThreadingHTTPServer] = []

    def serve(registry: CollectorRegistry, path: str = "/metrics") -> MetricsEndpoint:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != path:
                    self.send_error(404)
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return MetricsEndpoint(f"127.0.0.1:{server.server_address[1]}", path)

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class LocalPrometheus:
    url: str
    folder: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def get(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", timeout=5)
        answer.raise_for_status()
        return answer.json()["data"]


def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.25) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s; last value: {value!r}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    """A real Prometheus with the chart's recording rules, scraping every second."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed: apt-get install prometheus (make setup)")
    folder = tmp_path / "prometheus"
    write_config(folder)
    port = free_port()
    proc = start_prometheus(folder, port, tmp_path / "logs")
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_http(url + "/-/ready", 30, alive=proc):
            log = Path(proc.log).read_text(errors="replace")[-2000:]
            raise AssertionError(f"prometheus did not become ready:\n{log}")
        yield LocalPrometheus(url, folder)
    finally:
        stop(proc)
