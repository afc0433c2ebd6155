"""Prometheus metrics of an emulated backend, under the real server's names for its kind:
the names, paths and which series each engine has are `pickspin.core.engines.ENGINES`
(what `pickspin.adapters.engine_stats` reads), the labels and help texts as the real
servers write them.

KV-cache use is emulated as the fraction of concurrency slots in use. Each app owns its
`CollectorRegistry`; nothing is registered globally.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from pickspin.core.engines import ENGINES
from pickspin.core.settings import BackendKind

# Buckets as the real servers use them.
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                   50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
# TGI's router: exponential duration buckets starting at 0.1 ms, factor 1.5.
TGI_DURATION_BUCKETS = tuple(0.0001 * 1.5**i for i in range(35))


class EngineMetrics(ABC):
    """The metrics one emulated backend keeps; subclasses name them as their real server."""

    kind: BackendKind
    path: str = "/metrics"
    content_type: str = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        self.model_name = model_name
        self.registry = registry if registry is not None else CollectorRegistry()

    @abstractmethod
    def set_load(self, running: int, waiting: int, capacity: int) -> None:
        """Requests holding a slot, requests queued for one, and the number of slots."""

    def request_received(self) -> None:  # noqa: B027 - most servers count at completion
        """A request arrived (counted before validation of its fate)."""

    @abstractmethod
    def request_finished(self, *, ttft: float, e2e: float, queued: float, prompt_tokens: int,
                         generation_tokens: int, finish_reason: str) -> None:
        """A request completed successfully."""

    def render(self) -> bytes:
        return generate_latest(self.registry)


class VllmMetrics(EngineMetrics):
    kind = BackendKind.VLLM

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        labels = ("model_name", "engine")
        values = (model_name, "0")
        reg = self.registry
        n = ENGINES[self.kind]
        self.running = Gauge(n.running[0],
                             "Number of requests in model execution batches.", labels,
                             registry=reg).labels(*values)
        self.waiting = Gauge(n.waiting[0], "Number of requests waiting to be "
                             "processed.", labels, registry=reg).labels(*values)
        self.kv_cache = Gauge(n.kv_cache_usage[0], "KV-cache usage. 1 means 100 percent "
                              "usage.", labels, registry=reg).labels(*values)
        self.ttft = Histogram(str(n.ttft), "Histogram of time to first "
                              "token in seconds.", labels, buckets=TTFT_BUCKETS,
                              registry=reg).labels(*values)
        self.e2e = Histogram(str(n.e2e), "Histogram of e2e request "
                             "latency in seconds.", labels, buckets=LATENCY_BUCKETS,
                             registry=reg).labels(*values)
        self.success = Counter(str(n.success), "Count of successfully processed "
                               "requests.", (*labels, "finished_reason"), registry=reg)
        self.prompt_tokens = Counter(str(n.prompt_tokens), "Number of prefill tokens processed.",
                                     labels, registry=reg).labels(*values)
        self.generation_tokens = Counter(str(n.generation_tokens), "Number of generation "
                                         "tokens processed.", labels,
                                         registry=reg).labels(*values)
        for reason in ("stop", "length", "abort"):
            self.success.labels(*values, reason)

    def set_load(self, running: int, waiting: int, capacity: int) -> None:
        self.running.set(running)
        self.waiting.set(waiting)
        self.kv_cache.set(running / capacity)

    def request_finished(self, *, ttft: float, e2e: float, queued: float, prompt_tokens: int,
                         generation_tokens: int, finish_reason: str) -> None:
        self.ttft.observe(ttft)
        self.e2e.observe(e2e)
        self.success.labels(self.model_name, "0", finish_reason).inc()
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(generation_tokens)


class TgiMetrics(EngineMetrics):
    kind = BackendKind.TGI
    # The Rust exporter names counters as given, without `_total`.
    BARE_COUNTERS = (str(ENGINES[BackendKind.TGI].requests),
                     str(ENGINES[BackendKind.TGI].success))

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        reg = self.registry
        n = ENGINES[self.kind]
        self.queue = Gauge(n.waiting[0], "Current queue size", registry=reg)
        self.batch = Gauge(n.running[0], "Current batch size", registry=reg)
        self.count = Counter(str(n.requests), "Total number of requests", registry=reg)
        self.success = Counter(str(n.success), "Number of successful requests",
                               registry=reg)
        self.duration = Histogram(str(n.e2e), "Total time spent processing the "
                                  "request (e2e latency)", buckets=TGI_DURATION_BUCKETS,
                                  registry=reg)
        self.queue_duration = Histogram(str(n.queue_time), "Time spent in the queue "
                                        "per request", buckets=TGI_DURATION_BUCKETS,
                                        registry=reg)

    def set_load(self, running: int, waiting: int, capacity: int) -> None:
        self.queue.set(waiting)
        self.batch.set(running)

    def request_received(self) -> None:
        self.count.inc()

    def request_finished(self, *, ttft: float, e2e: float, queued: float, prompt_tokens: int,
                         generation_tokens: int, finish_reason: str) -> None:
        self.success.inc()
        self.duration.observe(e2e)
        self.queue_duration.observe(queued)

    def render(self) -> bytes:
        lines = []
        bare = self.BARE_COUNTERS
        for line in generate_latest(self.registry).decode().splitlines(keepends=True):
            if "_created" in line:
                continue  # the Rust exporter writes no _created series
            for name in bare:
                line = line.replace(f"{name}_total", name)
            lines.append(line)
        return "".join(lines).encode()


class TrtllmMetrics(EngineMetrics):
    kind = BackendKind.TRTLLM
    path = ENGINES[BackendKind.TRTLLM].path

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        labels = ("model_name", "engine_type")
        values = (model_name, "trtllm")
        reg = self.registry
        n = ENGINES[self.kind]
        self.success = Counter(str(n.success), "Count of successfully processed "
                               "requests.", (*labels, "finished_reason"), registry=reg)
        self.e2e = Histogram(str(n.e2e), "Histogram of end to end "
                             "request latency in seconds.", labels, buckets=LATENCY_BUCKETS,
                             registry=reg).labels(*values)
        self.ttft = Histogram(str(n.ttft), "Histogram of time to "
                              "first token in seconds.", labels, buckets=TTFT_BUCKETS,
                              registry=reg).labels(*values)
        self.queue_time = Histogram(str(n.queue_time), "Histogram of time "
                                    "spent in WAITING phase for request.", labels,
                                    buckets=LATENCY_BUCKETS, registry=reg).labels(*values)
        self.kv_cache = Gauge(n.kv_cache_usage[0], "KV cache utilization", labels,
                              registry=reg).labels(*values)
        self.running = Gauge(n.running[0], "Number of active requests",
                             labels, registry=reg).labels(*values)
        self.waiting = Gauge(n.waiting[0], "Number of queued requests",
                             labels, registry=reg).labels(*values)

    def set_load(self, running: int, waiting: int, capacity: int) -> None:
        self.running.set(running)
        self.waiting.set(waiting)
        self.kv_cache.set(running / capacity)

    def request_finished(self, *, ttft: float, e2e: float, queued: float, prompt_tokens: int,
                         generation_tokens: int, finish_reason: str) -> None:
        self.success.labels(self.model_name, "trtllm", finish_reason).inc()
        self.e2e.observe(e2e)
        self.ttft.observe(ttft)
        self.queue_time.observe(queued)


class LlamaCppMetrics(EngineMetrics):
    """llama.cpp's `llama-server --metrics` (tools/server): no labels, `llamacpp:` prefix,
    no latency histograms — only token and busy-slot counters and gauges."""

    kind = BackendKind.LLAMACPP

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        reg = self.registry
        n = ENGINES[self.kind]
        self.prompt_tokens = Counter(str(n.prompt_tokens), "Number of prompt tokens "
                                     "processed.", registry=reg)
        self.predicted = Counter(str(n.generation_tokens), "Number of generation tokens "
                                 "processed.", registry=reg)
        self.processing = Gauge(n.running[0], "Number of requests "
                                "processing.", registry=reg)
        self.deferred = Gauge(n.waiting[0], "Number of requests deferred.",
                              registry=reg)
        self.kv_cache = Gauge(n.kv_cache_usage[0], "KV-cache usage. 1 means 100 "
                              "percent usage.", registry=reg)

    def set_load(self, running: int, waiting: int, capacity: int) -> None:
        self.processing.set(running)
        self.deferred.set(waiting)
        self.kv_cache.set(running / capacity)

    def request_finished(self, *, ttft: float, e2e: float, queued: float, prompt_tokens: int,
                         generation_tokens: int, finish_reason: str) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self.predicted.inc(generation_tokens)

    def render(self) -> bytes:
        return b"".join(line.encode() for line in
                        generate_latest(self.registry).decode().splitlines(keepends=True)
                        if "_created" not in line)


METRICS: dict[BackendKind, type[EngineMetrics]] = {
    BackendKind.VLLM: VllmMetrics,
    BackendKind.TGI: TgiMetrics,
    BackendKind.TRTLLM: TrtllmMetrics,
    BackendKind.LLAMACPP: LlamaCppMetrics,
}


def make_metrics(kind: BackendKind | str, model_name: str,
                 registry: CollectorRegistry | None = None) -> EngineMetrics:
    """The metrics of a `kind` backend serving `model_name`, in a fresh registry by default."""
    return METRICS[BackendKind(kind)](model_name, registry)
