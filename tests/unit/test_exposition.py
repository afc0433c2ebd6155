"""The gateway's fast `/metrics` page says what prometheus-client's own exposition says: both
are parsed with prometheus-client's parser and compared series by series, and the text is
the same line for line (`_created` apart: the fast page leaves them out)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pickspin.adapters.exposition import Exposition
from pickspin.apps.gateway.metrics import GatewayMetrics


def series(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def lines(text: bytes) -> list[str]:
    """The page's lines without the `_created` families (HELP, TYPE and samples)."""
    return [line for line in text.decode().splitlines() if "_created" not in line]


def families(text: bytes) -> dict[str, tuple[str, str]]:
    return {f.name: (f.type, f.documentation)
            for f in text_string_to_metric_families(text.decode())
            if not f.name.endswith("_created")}


def test_the_gateway_page_means_what_generate_latest_says(settings) -> None:
    metrics = GatewayMetrics(settings)
    services = list(settings.services)
    for i, svc in enumerate(services[:5]):
        metrics.requests.labels(svc.model, svc.backend, "success").inc(i + 1)
        metrics.duration.labels(svc.model, svc.backend).observe(0.02 * (i + 1))
        metrics.ttft.labels(svc.model, svc.backend).observe(7.5 * i)
        metrics.inflight.labels(svc.name).inc(i)
        metrics.decisions.labels("semantic", "high", svc.model, svc.backend).inc()
    metrics.pending.labels(services[0].name).set(2)
    metrics.classification.labels("semantic").observe(0.004)
    fast, reference = metrics.render(), generate_latest(metrics.registry)
    assert series(fast) == series(reference)
    assert families(fast) == families(reference)
    assert lines(fast) == lines(reference)  # what a grep of the page finds, too
    assert len(series(fast)) > 500  # every pre-created series of the matrix is there


def test_unlabelled_metrics_awkward_labels_and_infinities() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", 'help with "quotes" and \\ and\nnewline', ["k"], registry=registry)
    gauge = Gauge("g", "gauge", registry=registry)
    histogram = Histogram("h_seconds", "h", buckets=(0.5, 1.0), registry=registry)
    counter.labels('a"b\\c\nd').inc(3)
    gauge.set(float("inf"))
    histogram.observe(0.7)
    histogram.observe(9.0)
    Counter("big", "a count past Go's switch to exponents", registry=registry).inc(12345678)
    big = registry._names_to_collectors["big_total"]
    page = Exposition(registry, (counter, gauge, histogram, big)).render()
    assert series(page) == series(generate_latest(registry))
    assert families(page) == families(generate_latest(registry))
    assert lines(page) == lines(generate_latest(registry))


def test_an_unknown_metric_layout_falls_back_to_the_library(settings) -> None:
    metrics = GatewayMetrics(settings)
    metrics.requests.labels("m", "b", "success").inc()

    class Odd:  # a metric object without the attributes the fast path reads
        _type, _name = "counter", "odd"

    exposition = Exposition(metrics.registry, (Odd(),))  # type: ignore[arg-type]
    assert exposition.render() == generate_latest(metrics.registry)
