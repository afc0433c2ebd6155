"""One telemetry state whichever selector replica answers: a snapshot pushed to one replica
(as a Broker Trigger delivers it) is soon what every replica routes on, because a replica
whose copy is older than PICKSPIN_SNAPSHOT_MAX_AGE pulls telemetry's latest before routing.
Real processes: telemetry, two identical selector replicas, and a control replica that
never pulls, all installed and served as func runs them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.settings import Settings
from pickspin.local.processes import Proc, free_port, stop
from tests.conftest import VALUES
from tests.functions.served import Installed, local_env, serve

pytestmark = pytest.mark.integration

MAX_AGE = 1.0


class Replicas:
    """A stand-in for the local scaler's `GET /replicas`; services it omits are unhealthy."""

    def __init__(self, services: list[str]) -> None:
        self.counts = {name: {"replicas": 1, "ready": 1} for name in services}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(owner.counts).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas(settings: Settings) -> Iterator[Replicas]:
    stand_in = Replicas([s.name for s in settings.services])
    yield stand_in
    stand_in.close()


@pytest.fixture
def cluster(installed: Installed, replicas: Replicas, tmp_path: Path) -> Iterator[dict[str, Proc]]:
    """Telemetry pushing its snapshots to replica `a` only; replicas `a` and `b` configured
    alike; `control` never pulls (the stale state the design removes)."""
    unsigned = {"PICKSPIN_INTERNAL_TOKEN": ""}  # unsigned events (signing: tests/integration)
    logs = tmp_path / "logs"
    procs: dict[str, Proc] = {}
    a_port = free_port()
    try:
        procs["telemetry"] = serve(installed, "telemetry", {
            **local_env("telemetry", {"PICKSPIN_CONFIG": str(VALUES), **unsigned,
                                      "PICKSPIN_PROMETHEUS_URL": ""}),
            "PICKSPIN_REPLICAS_URL": replicas.url,
            "K_SINK": f"http://127.0.0.1:{a_port}"}, logs)  # as one Trigger delivery goes
        for name, max_age, port in (("a", str(MAX_AGE), a_port), ("b", str(MAX_AGE), None),
                                    ("control", "inf", None)):
            procs[name] = serve(installed, "selector", {
                **local_env("selector", {"PICKSPIN_CONFIG": str(VALUES), **unsigned,
                                         "PICKSPIN_TELEMETRY_URL": str(procs["telemetry"].url)}),
                "PICKSPIN_SNAPSHOT_MAX_AGE": max_age}, logs, port=port)
        yield procs
    finally:
        for proc in procs.values():
            stop(proc)


def post(url: str | None, type_: str, data: dict) -> httpx.Response:
    event = CloudEvent({"type": type_, "source": "/tests", "datacontenttype": "application/json"},
                       data)
    message = to_binary_event(event)
    return httpx.post(str(url), content=message.body, headers=message.headers, timeout=10)


def chosen(replica: Proc) -> str:
    data = {"request_id": "r", "complexity": "low", "router": "keyword", "elapsed_ms": 0.1,
            "probabilities": {"low": 0.8, "medium": 0.1, "high": 0.1}}
    answer = post(replica.url, "io.pickspin.prompt.classified", data)
    assert answer.status_code == 200, answer.text
    reply = from_http_event(HTTPMessage(headers=dict(answer.headers), body=answer.content))
    return str(reply.get_data()["chosen"]["service"])


def test_every_selector_replica_routes_on_the_newest_telemetry(cluster, replicas):
    a, b, control = cluster["a"], cluster["b"], cluster["control"]
    best = chosen(a)  # every replica started with telemetry's snapshot
    assert chosen(b) == best and chosen(control) == best

    del replicas.counts[best]  # the best service goes away...
    tick = post(cluster["telemetry"].url, "dev.knative.sources.ping", {"reason": "tick"})
    assert tick.status_code == 200  # ...telemetry sees it and pushes the snapshot to a only
    snapshot = from_http_event(HTTPMessage(headers=dict(tick.headers), body=tick.content))
    assert snapshot.get_data()["services"][best]["healthy"] is False

    time.sleep(MAX_AGE + 0.2)
    # the first request to each replica after MAX_AGE already routes on the new state
    assert chosen(a) != best
    assert chosen(b) != best  # b never received a push: it pulled telemetry's latest
    assert chosen(control) == best  # without pulling, a replica routes on stale state
