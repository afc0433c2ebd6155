"""The gateway's `pickspin_*` Prometheus metrics: the names the keda chart's recording rules,
the ScaledObjects' queries and `pickspin.adapters.promstats` read."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pickspin.adapters.exposition import Exposition
from pickspin.core.settings import Settings

# Buckets from 5 ms to 2 min: TTFT of a warm backend up to a large model's cold start.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
CLASSIFY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class GatewayMetrics:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("pickspin_requests", "Requests answered, by outcome",
                                ["model", "backend", "outcome"], registry=r)
        self.duration = Histogram("pickspin_request_duration_seconds",
                                  "Time from request to the last byte of the answer",
                                  ["model", "backend"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("pickspin_ttft_seconds", "Time from request to the first token",
                              ["model", "backend"], buckets=LATENCY_BUCKETS, registry=r)
        self.inflight = Gauge("pickspin_inflight_requests", "Requests being served",
                              ["service"], registry=r)
        self.pending = Gauge("pickspin_pending_requests",
                             "Requests waiting on a cold backend", ["service"], registry=r)
        self.decisions = Counter("pickspin_route_decisions", "Routing decisions",
                                 ["router", "complexity", "model", "backend"], registry=r)
        self.classification = Histogram("pickspin_classification_seconds",
                                        "Time the classifier took", ["router"],
                                        buckets=CLASSIFY_BUCKETS, registry=r)
        # Series exist from the start, also for services at zero replicas: a scaler can
        # activate on pending demand before any request has finished, and rate() sees the
        # first request's duration as an increase rather than as the series' first value.
        for svc in settings.services:
            self.inflight.labels(svc.name)
            self.pending.labels(svc.name)
            self.duration.labels(svc.model, svc.backend)
            self.ttft.labels(svc.model, svc.backend)
            for outcome in ("success", "error"):
                self.requests.labels(svc.model, svc.backend, outcome)
        self.exposition = Exposition(r, (self.requests, self.duration, self.ttft, self.inflight,
                                         self.pending, self.decisions, self.classification))

    def render(self) -> bytes:
        """The `/metrics` page (`pickspin.adapters.exposition`)."""
        return self.exposition.render()
