"""Prometheus statistics: the PromQL built, answers parsed, and a client injected."""

from __future__ import annotations

import pytest
import requests

from pickspin.adapters.promstats import (
    STAT_LABEL,
    PrometheusStats,
    Stat,
    combined,
    expressions,
    parse_vector,
    service_stats,
    split,
)
from pickspin.core.scoring import cost_per_query
from pickspin.core.settings import Settings
from pickspin.core.telemetry import StatsUnavailable


def sample(value: float | str, **labels: str) -> dict:
    return {"metric": labels, "value": [1700000000.0, str(value)]}


def gemma(value: float | str) -> dict:
    return sample(value, model="gemma-3-27b", backend="vllm")


def test_every_window_queries_the_gateway_metrics_directly():
    # the recording rules' window follows the scrape interval (4 s locally, 2 min at a 30 s
    # scrape), so a snapshot over its own window never reads them
    assert "pickspin:" not in "".join(expressions(60).values())
    exprs = expressions(300)
    assert "pickspin:" not in exprs[Stat.RATE] + exprs[Stat.LATENCY_MEAN]
    assert exprs[Stat.RATE] == "sum by (model, backend) (rate(pickspin_requests_total[300s]))"
    assert exprs[Stat.TTFT_P99] == ("histogram_quantile(0.99, sum by (model, backend, le) "
                                    "(rate(pickspin_ttft_seconds_bucket[300s])))")
    assert exprs[Stat.LATENCY_P50].startswith("histogram_quantile(0.5, ")
    assert 'outcome="success"' in exprs[Stat.SUCCESS_RATIO]
    assert "increase(pickspin_requests_total[300s])" in exprs[Stat.REQUESTS]


def test_parse_vector_keys_by_labels_and_drops_nan_and_inf():
    parsed = parse_vector([gemma("0.5"), sample("NaN", model="m", backend="b"),
                           sample("+Inf", model="x", backend="y"), {"metric": {}}])
    assert parsed == {("gemma-3-27b", "vllm"): 0.5}
    assert parse_vector([sample(3, service="s")], ("service",)) == {("s",): 3.0}


def test_service_stats_from_query_answers(settings: Settings):
    results = {
        Stat.REQUESTS: [gemma(29.7)],
        Stat.RATE: [gemma(0.5)],
        Stat.SUCCESS_RATIO: [gemma(0.9)],
        Stat.LATENCY_MEAN: [gemma(2.0)],
        Stat.LATENCY_P50: [gemma(1.8)],
        Stat.LATENCY_P99: [gemma(4.5)],
        Stat.TTFT_MEAN: [gemma(0.07)],
        Stat.TTFT_P50: [gemma(0.06)],
        Stat.TTFT_P99: [gemma("NaN")],  # too few samples in a bucket: no quantile
        Stat.INFLIGHT: [sample(3, service="gemma-3-27b-vllm"), sample(0, service="other")],
        Stat.PENDING: [sample(2, service="gemma-3-27b-vllm")],
    }
    stats = service_stats(settings, results, 60)
    assert set(stats) == {s.name for s in settings.services}
    s = stats["gemma-3-27b-vllm"]
    assert s.requests == 30
    assert s.rate_per_second == 0.5
    assert s.success_ratio == pytest.approx(0.9)
    assert (s.latency_seconds, s.latency_p50_seconds, s.latency_p99_seconds) == (2.0, 1.8, 4.5)
    assert (s.ttft_seconds, s.ttft_p50_seconds, s.ttft_p99_seconds) == (0.07, 0.06, None)
    assert s.cost_per_query == pytest.approx(
        cost_per_query(settings.service("gemma-3-27b-vllm"), 2.0))
    assert (s.running, s.pending) == (3, 2)
    assert s.time_per_token_seconds is None  # the gateway exports no token counts


def test_a_service_without_traffic_has_zero_requests_and_no_latency(settings: Settings):
    quiet = service_stats(settings, {}, 60)["gemma-3-27b-tgi"]
    assert (quiet.requests, quiet.rate_per_second) == (0, 0.0)
    assert quiet.latency_seconds is None and quiet.success_ratio is None
    assert quiet.cost_per_query is None


class FakePrometheus:
    """Answers with fixed samples per statistic, tagged as Prometheus tags the answer to the
    combined query."""

    def __init__(self, answers: dict[Stat, list[dict]], fail: Exception | None = None) -> None:
        self.answers = answers
        self.fail = fail
        self.queries: list[str] = []

    def custom_query(self, query: str) -> list[dict]:
        self.queries.append(query)
        if self.fail is not None:
            raise self.fail
        return [{**s, "metric": {**s["metric"], STAT_LABEL: stat.value}}
                for stat, samples in self.answers.items() for s in samples]


def test_every_statistic_is_one_tagged_part_of_a_single_query():
    exprs = expressions(60)
    query = combined(exprs)
    for stat, expr in exprs.items():
        assert f'label_replace({expr}, "{STAT_LABEL}", "{stat.value}", "", "")' in query
    assert query.count(" or ") == len(exprs) - 1
    answer = [sample(1.5, model="m", backend="b", **{STAT_LABEL: "rate"}),
              sample(2, service="s", **{STAT_LABEL: "inflight"}), sample(9, model="x")]
    parts = split(answer)
    assert parts[Stat.RATE] == [sample(1.5, model="m", backend="b")]
    assert parts[Stat.INFLIGHT] == [sample(2, service="s")]
    assert sum(map(len, parts.values())) == 2  # the untagged sample belongs to no statistic


def test_prometheus_stats_runs_every_query_through_the_injected_client(settings: Settings):
    fake = FakePrometheus({Stat.RATE: [gemma(1.5)], Stat.LATENCY_MEAN: [gemma(0.9)]})
    stats = PrometheusStats(fake, settings).collect()
    assert fake.queries == [combined(expressions(60))]  # one request per snapshot
    assert stats["gemma-3-27b-vllm"].rate_per_second == 1.5
    assert stats["gemma-3-27b-vllm"].latency_seconds == 0.9
    assert stats["gemma-3-27b-vllm"].requests == 90  # no increase() answer: rate × window


@pytest.mark.parametrize("error", [requests.ConnectionError("refused"), ValueError("bad json")])
def test_an_unreachable_prometheus_is_reported_as_stats_unavailable(settings, error):
    fake = FakePrometheus({}, fail=error)
    with pytest.raises(StatsUnavailable, match="prometheus"):
        PrometheusStats(fake, settings).collect()
    assert len(fake.queries) == 1  # the first failure stops the tick's queries


def test_connect_builds_a_prometheus_api_client(settings: Settings):
    stats = PrometheusStats.connect("http://127.0.0.1:1", settings, window_seconds=30)
    assert type(stats.client).__name__ == "PrometheusConnect"
    assert stats.client.url == "http://127.0.0.1:1"
    assert stats.window_seconds == 30
    with pytest.raises(StatsUnavailable):  # nothing listens on port 1
        stats.collect()


@pytest.mark.integration
def test_statistics_from_a_real_prometheus_scraping_real_gateway_metrics(
        prometheus, serve_metrics, settings: Settings):
    import threading

    from prometheus_client import CollectorRegistry

    from pickspin.apps.gateway.metrics import GatewayMetrics
    from pickspin.local.prometheus import Target, write_targets
    from tests.spin.conftest import eventually

    metrics = GatewayMetrics(settings, CollectorRegistry())
    endpoint = serve_metrics(metrics.registry, "/metrics")
    write_targets(prometheus.folder, "functions", [Target(endpoint.address, endpoint.path,
                                                          {"job": "gateway"})])
    metrics.inflight.labels("gemma-3-27b-vllm").set(3)
    metrics.pending.labels("gemma-3-27b-tgi").set(2)
    stop = threading.Event()

    def traffic() -> None:  # three successes and one error per round
        while not stop.is_set():
            for outcome in ("success", "success", "success", "error"):
                metrics.requests.labels("gemma-3-27b", "vllm", outcome).inc()
                metrics.duration.labels("gemma-3-27b", "vllm").observe(0.8)
                metrics.ttft.labels("gemma-3-27b", "vllm").observe(0.04)
            stop.wait(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    source = PrometheusStats.connect(prometheus.url, settings)
    try:
        def measured():
            stats = source.collect()
            vllm = stats["gemma-3-27b-vllm"]
            ready = (vllm.rate_per_second > 0 and vllm.latency_seconds is not None
                     and vllm.ttft_seconds is not None and stats["gemma-3-27b-tgi"].pending)
            return stats if ready else None

        stats = eventually(measured, timeout=30)
    finally:
        stop.set()
        worker.join()
    vllm = stats["gemma-3-27b-vllm"]
    assert vllm.latency_seconds == pytest.approx(0.8)
    assert 0.5 < vllm.latency_p50_seconds <= 1.0  # the (0.5, 1] bucket
    assert 0.025 < vllm.ttft_p99_seconds <= 0.05
    assert vllm.ttft_seconds == pytest.approx(0.04)
    assert vllm.success_ratio == pytest.approx(0.75, abs=0.05)
    assert vllm.requests > 0
    assert vllm.cost_per_query == pytest.approx(
        cost_per_query(settings.service("gemma-3-27b-vllm"), vllm.latency_seconds))
    assert vllm.running == 3
    assert stats["gemma-3-27b-tgi"].pending == 2
    assert stats["gemma-3-27b-tgi"].requests == 0
