"""The telemetry loop: Prometheus statistics merged with the events window, replicas from
the chosen source, the choice made from the environment in `start(cfg)`, and the function's
handle answering a tick with it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pickspin.adapters.probes import BackendProber, ReplicaProber
from pickspin.adapters.promstats import PrometheusStats
from pickspin.adapters.replicas import KubeReplicas, LocalReplicas
from pickspin.core.events import InferenceCompleted, ServiceStats
from pickspin.core.settings import Settings
from pickspin.core.telemetry import Probe, StatsUnavailable, Telemetry, Window
from pickspin.local.processes import free_port
from tests.conftest import load_function
from tests.functions.test_event_functions import post, reply_event, sdk_event

SVC = "gemma-3-27b-vllm"


def done(latency: float, ttft: float, tokens: int) -> InferenceCompleted:
    return InferenceCompleted(request_id="r", service=SVC, model="gemma-3-27b", backend="vllm",
                              outcome="success", ttft_seconds=ttft, latency_seconds=latency,
                              completion_tokens=tokens, finished_at=time.time())


class FixedStats:
    window_seconds = 120.0

    def __init__(self, stats: dict[str, ServiceStats] | None) -> None:
        self.stats = stats

    def collect(self) -> dict[str, ServiceStats]:
        if self.stats is None:
            raise StatsUnavailable("prometheus: down")
        return self.stats


class FixedProbes:
    def __init__(self, probes: dict[str, Probe]) -> None:
        self.probes = probes

    def probe_all(self) -> dict[str, Probe]:
        return self.probes

    def close(self) -> None:
        pass


def test_prometheus_statistics_win_and_events_add_the_decode_time(settings: Settings):
    window = Window(settings)
    window.add(done(latency=2.1, ttft=0.1, tokens=11))  # 0.2 s per token after the first
    measured = {SVC: ServiceStats(requests=40, rate_per_second=0.66, latency_seconds=1.5,
                                  ttft_p99_seconds=0.3, running=4)}
    probes = {SVC: Probe(healthy=True, replicas=0, ready_replicas=0)}
    snap = Telemetry(window, FixedProbes(probes), FixedStats(measured)).snapshot()
    s = snap.services[SVC]
    assert (s.requests, s.rate_per_second, s.latency_seconds) == (40, 0.66, 1.5)
    assert s.ttft_p99_seconds == 0.3
    assert s.time_per_token_seconds == pytest.approx(0.2)
    assert (s.healthy, s.replicas, s.ready_replicas) == (True, 0, 0)  # healthy but cold
    assert s.running == 4  # the gateway's in-flight gauge, not overwritten by the probe
    assert snap.window_seconds == 120.0
    assert set(snap.services) == {svc.name for svc in settings.services}
    assert snap.services["gemma-3-27b-tgi"].requests == 0


def test_events_stand_in_when_prometheus_is_unavailable(settings: Settings):
    window = Window(settings)
    window.add(done(latency=2.0, ttft=0.5, tokens=4))
    snap = Telemetry(window, FixedProbes({}), FixedStats(None)).snapshot()
    assert snap.services[SVC].requests == 1
    assert snap.services[SVC].latency_seconds == 2.0
    assert snap.services[SVC].ttft_seconds == 0.5


def test_without_prometheus_the_window_is_the_source(settings: Settings):
    window = Window(settings)
    window.add(done(latency=1.0, ttft=0.2, tokens=5))
    snap = Telemetry(window, FixedProbes({SVC: Probe(healthy=False)})).snapshot()
    assert snap.services[SVC].requests == 1
    assert snap.services[SVC].healthy is False


@pytest.fixture(scope="module")
def telemetry_module() -> Any:
    return load_function("telemetry")


@pytest.mark.parametrize(("cfg", "source"), [
    ({}, None),
    ({"PICKSPIN_REPLICAS_URL": "http://127.0.0.1:1"}, LocalReplicas),
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "ml"}, KubeReplicas),
    ({"PICKSPIN_REPLICAS_URL": "http://127.0.0.1:1", "KUBERNETES_SERVICE_HOST": "10.0.0.1"},
     LocalReplicas),
])
def test_the_replica_source_is_chosen_by_environment(telemetry_module, settings, cfg, source):
    probes = telemetry_module.probe_source(settings, cfg)
    try:
        if source is None:
            assert isinstance(probes, BackendProber)
        else:
            assert isinstance(probes, ReplicaProber)
            assert isinstance(probes.source, source)
            assert isinstance(probes.fallback, BackendProber)
            if source is KubeReplicas:
                assert probes.source.namespace == "ml"
    finally:
        probes.close()


def test_prometheus_is_used_when_its_url_is_set(telemetry_module, settings):
    assert telemetry_module.stats_source(settings, {}, 60) is None
    stats = telemetry_module.stats_source(
        settings, {"PICKSPIN_PROMETHEUS_URL": "http://127.0.0.1:9090"}, 30)
    assert isinstance(stats, PrometheusStats)
    assert stats.window_seconds == 30


@pytest.fixture
def local_scaler() -> Iterator[str]:
    """A stand-in for the local scaler's `GET /replicas`."""
    body = json.dumps({SVC: {"replicas": 0, "ready": 0},
                       "gemma-3-27b-tgi": {"replicas": 2, "ready": 2}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/replicas" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_tick_reports_replicas_from_the_local_scaler(start_function, local_scaler):
    fn = start_function("telemetry", {"PICKSPIN_REPLICAS_URL": local_scaler})
    reply = await post(fn, sdk_event("dev.knative.sources.ping", {}), "binary")
    assert reply.status == 200
    services = reply_event(reply).get_data()["services"]
    assert services[SVC]["healthy"] is True and services[SVC]["replicas"] == 0
    assert services["gemma-3-27b-tgi"]["ready_replicas"] == 2
    assert services["gemma-3-27b-trtllm"]["healthy"] is False  # the scaler does not know it


async def test_a_tick_falls_back_to_events_when_prometheus_is_down(start_function):
    dead = f"http://127.0.0.1:{free_port()}"
    fn = start_function("telemetry", {"PICKSPIN_PROMETHEUS_URL": dead})
    event = done(latency=3.0, ttft=0.5, tokens=6).model_dump(mode="json")
    assert (await post(fn, sdk_event("io.pickspin.inference.completed", event),
                       "binary")).status == 202
    reply = await post(fn, sdk_event("dev.knative.sources.ping", {}), "binary")
    assert reply.status == 200
    stats = reply_event(reply).get_data()["services"][SVC]
    assert stats["requests"] == 1
    assert stats["latency_seconds"] == 3.0


@pytest.mark.integration
async def test_a_tick_reads_a_real_prometheus(start_function, prometheus, serve_metrics,
                                              settings, local_scaler):
    import asyncio

    from prometheus_client import CollectorRegistry

    from pickspin.apps.gateway.metrics import GatewayMetrics
    from pickspin.local.prometheus import Target, write_targets

    metrics = GatewayMetrics(settings, CollectorRegistry())
    endpoint = serve_metrics(metrics.registry, "/metrics")
    write_targets(prometheus.folder, "functions",
                  [Target(endpoint.address, endpoint.path, {"job": "gateway"})])
    fn = start_function("telemetry", {"PICKSPIN_PROMETHEUS_URL": prometheus.url,
                                      "PICKSPIN_REPLICAS_URL": local_scaler})
    deadline = time.monotonic() + 30
    while True:
        metrics.requests.labels("gemma-3-27b", "vllm", "success").inc(5)
        metrics.duration.labels("gemma-3-27b", "vllm").observe(1.2)
        reply = await post(fn, sdk_event("dev.knative.sources.ping", {}), "binary")
        assert reply.status == 200
        stats = reply_event(reply).get_data()["services"][SVC]
        if stats["rate_per_second"] > 0 and stats["latency_seconds"] is not None:
            break
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.5)
    assert stats["latency_seconds"] == pytest.approx(1.2)
    assert stats["healthy"] is True and stats["replicas"] == 0  # from the scaler: cold
