"""The local Prometheus: config and file_sd targets (pure), then a real process scraping a
real prometheus_client registry and evaluating the chart's recording rules."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pickspin.apps.gateway.metrics import GatewayMetrics
from pickspin.core.settings import Settings
from pickspin.local.prometheus import (
    RULES,
    PrometheusMissing,
    Target,
    duration,
    find_binary,
    start_prometheus,
    write_config,
    write_targets,
)
from tests.spin.conftest import LocalPrometheus, eventually


def test_rules_path_is_the_charts_own_file():
    assert RULES.is_file()
    assert RULES.parts[-3:] == ("keda", "files", "recording-rules.yaml")


def test_durations_are_prometheus_durations():
    assert duration(1.0) == "1s"
    assert duration(15) == "15s"
    assert duration(0.5) == "500ms"
    with pytest.raises(ValueError):
        duration(0)


def test_config_scrapes_file_sd_targets_and_loads_the_rules(tmp_path: Path):
    path = write_config(tmp_path, scrape_interval=2.0)
    cfg = yaml.safe_load(path.read_text())
    assert cfg["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s",
                             "evaluation_interval": "2s"}
    # the chart's rules rendered for this interval: every rate window is 4 × 2 s
    assert cfg["rule_files"] == [str(tmp_path.resolve() / "recording-rules.yaml")]
    rules = (tmp_path / "recording-rules.yaml").read_text()
    assert "[8s]" in rules and "pickspin:service_demand:rate" in rules
    (job,) = cfg["scrape_configs"]
    (sd,) = job["file_sd_configs"]
    assert sd["files"] == [str(tmp_path.resolve() / "targets" / "*.json")]
    assert sd["refresh_interval"] == "1s"
    assert (tmp_path / "targets").is_dir()


def test_promtool_accepts_the_config(tmp_path: Path):
    path = write_config(tmp_path)
    checked = subprocess.run(["promtool", "check", "config", str(path)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_targets_file_has_one_group_per_target_with_its_metrics_path(tmp_path: Path):
    path = write_targets(tmp_path, "backends", [
        Target("127.0.0.1:9001", labels={"job": "backend", "service": "m-vllm"}),
        Target("127.0.0.1:9002", "/prometheus/metrics",
               {"job": "backend", "service": "m-trtllm"}),
    ])
    assert path == tmp_path / "targets" / "backends.json"
    groups = json.loads(path.read_text())
    assert groups == [
        {"targets": ["127.0.0.1:9001"],
         "labels": {"job": "backend", "service": "m-vllm", "__metrics_path__": "/metrics"}},
        {"targets": ["127.0.0.1:9002"],
         "labels": {"job": "backend", "service": "m-trtllm",
                    "__metrics_path__": "/prometheus/metrics"}},
    ]
    write_targets(tmp_path, "backends", [])
    assert json.loads(path.read_text()) == []
    assert [p.name for p in (tmp_path / "targets").iterdir()] == ["backends.json"]


def test_a_missing_binary_says_how_to_install_it(tmp_path: Path):
    with pytest.raises(PrometheusMissing, match="apt-get install prometheus"):
        find_binary(which=lambda name: None)
    write_config(tmp_path)
    with pytest.raises(PrometheusMissing, match="make setup"):
        start_prometheus(tmp_path, 1, tmp_path / "logs", which=lambda name: None)


@pytest.mark.integration
def test_prometheus_scrapes_targets_and_evaluates_the_recording_rules(
        prometheus: LocalPrometheus, serve_metrics, settings: Settings):
    metrics = GatewayMetrics(settings, CollectorRegistry())
    # a trtllm-style path proves __metrics_path__ is honoured (any other path is a 404)
    endpoint = serve_metrics(metrics.registry, "/prometheus/metrics")
    write_targets(prometheus.folder, "functions", [
        Target(endpoint.address, endpoint.path, {"job": "gateway"})])

    up = eventually(lambda: prometheus.query('up{job="gateway"} == 1'))
    assert up[0]["metric"]["instance"] == endpoint.address

    groups = prometheus.get("/api/v1/rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert "pickspin:service_demand:rate" in rules
    assert all(r["health"] == "ok" for r in rules.values()), rules

    stop = threading.Event()

    def traffic() -> None:  # requests keep finishing, as at a busy gateway
        while not stop.is_set():
            metrics.requests.labels("gemma-3-27b", "vllm", "success").inc()
            metrics.duration.labels("gemma-3-27b", "vllm").observe(0.8)
            stop.wait(0.05)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        demand = eventually(lambda: prometheus.query(
            'pickspin:service_demand:rate{model="gemma-3-27b",backend="vllm"} > 0'))
        latency = eventually(lambda: prometheus.query(
            'pickspin:service_latency_seconds:mean{model="gemma-3-27b",backend="vllm"}'))
    finally:
        stop.set()
        worker.join()
    assert float(demand[0]["value"][1]) > 0
    assert float(latency[0]["value"][1]) == pytest.approx(0.8)

    # removing the target file's entries stops the scrape without a restart
    write_targets(prometheus.folder, "functions", [])
    eventually(lambda: not prometheus.get("/api/v1/targets")["activeTargets"])
