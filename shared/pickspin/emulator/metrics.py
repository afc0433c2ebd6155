"""Prometheus metrics of an emulated backend, under the real server's names for its kind.

Names and labels as the real servers expose them (checked against their sources):

- vLLM (v1 engine, `vllm/v1/metrics/loggers.py`), at `/metrics`, labels `model_name` and
  `engine`: `vllm:num_requests_running`, `vllm:num_requests_waiting`,
  `vllm:kv_cache_usage_perc`, histograms `vllm:time_to_first_token_seconds` and
  `vllm:e2e_request_latency_seconds`, counter `vllm:request_success_total` (plus
  `finished_reason`), `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`.
- TGI (router, Rust `metrics` crate), at `/metrics`, no labels: gauges `tgi_queue_size`,
  `tgi_batch_current_size`; counters `tgi_request_count`, `tgi_request_success` (the Rust
  exporter writes counters without a `_total` suffix); histograms `tgi_request_duration`,
  `tgi_request_queue_duration`. TGI has no TTFT histogram.
- trtllm-serve (`tensorrt_llm/metrics/collector.py`), at `/prometheus/metrics`, labels
  `model_name` and `engine_type`: histograms `trtllm_time_to_first_token_seconds`,
  `trtllm_e2e_request_latency_seconds`, counter `trtllm_request_success_total`, gauges
  `trtllm_kv_cache_utilization`, `trtllm_num_requests_running`,
  `trtllm_num_requests_waiting` (the last three only in releases after 1.1).

- llama-server (`--metrics`), at `/metrics`, no labels: `llamacpp:requests_processing`,
  `llamacpp:requests_deferred`, `llamacpp:kv_cache_usage_ratio`, counters
  `llamacpp:prompt_tokens_total`, `llamacpp:tokens_predicted_total`; no latency histograms.

KV-cache use is emulated as the fraction of concurrency slots in use. Each app owns its
`CollectorRegistry`; nothing is registered globally.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
        self.running = Gauge("vllm:num_requests_running",
                             "Number of requests in model execution batches.", labels,
                             registry=reg).labels(*values)
        self.waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be "
                             "processed.", labels, registry=reg).labels(*values)
        self.kv_cache = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent "
                              "usage.", labels, registry=reg).labels(*values)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first "
                              "token in seconds.", labels, buckets=TTFT_BUCKETS,
                              registry=reg).labels(*values)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request "
                             "latency in seconds.", labels, buckets=LATENCY_BUCKETS,
                             registry=reg).labels(*values)
        self.success = Counter("vllm:request_success", "Count of successfully processed "
                               "requests.", (*labels, "finished_reason"), registry=reg)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.",
                                     labels, registry=reg).labels(*values)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation "
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
    BARE_COUNTERS = ("tgi_request_count", "tgi_request_success")

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        reg = self.registry
        self.queue = Gauge("tgi_queue_size", "Current queue size", registry=reg)
        self.batch = Gauge("tgi_batch_current_size", "Current batch size", registry=reg)
        self.count = Counter("tgi_request_count", "Total number of requests", registry=reg)
        self.success = Counter("tgi_request_success", "Number of successful requests",
                               registry=reg)
        self.duration = Histogram("tgi_request_duration", "Total time spent processing the "
                                  "request (e2e latency)", buckets=TGI_DURATION_BUCKETS,
                                  registry=reg)
        self.queue_duration = Histogram("tgi_request_queue_duration", "Time spent in the queue "
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
    path = "/prometheus/metrics"

    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        super().__init__(model_name, registry)
        labels = ("model_name", "engine_type")
        values = (model_name, "trtllm")
        reg = self.registry
        self.success = Counter("trtllm_request_success", "Count of successfully processed "
                               "requests.", (*labels, "finished_reason"), registry=reg)
        self.e2e = Histogram("trtllm_e2e_request_latency_seconds", "Histogram of end to end "
                             "request latency in seconds.", labels, buckets=LATENCY_BUCKETS,
                             registry=reg).labels(*values)
        self.ttft = Histogram("trtllm_time_to_first_token_seconds", "Histogram of time to "
                              "first token in seconds.", labels, buckets=TTFT_BUCKETS,
                              registry=reg).labels(*values)
        self.queue_time = Histogram("trtllm_request_queue_time_seconds", "Histogram of time "
                                    "spent in WAITING phase for request.", labels,
                                    buckets=LATENCY_BUCKETS, registry=reg).labels(*values)
        self.kv_cache = Gauge("trtllm_kv_cache_utilization", "KV cache utilization", labels,
                              registry=reg).labels(*values)
        self.running = Gauge("trtllm_num_requests_running", "Number of active requests",
                             labels, registry=reg).labels(*values)
        self.waiting = Gauge("trtllm_num_requests_waiting", "Number of queued requests",
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
        self.prompt_tokens = Counter("llamacpp:prompt_tokens", "Number of prompt tokens "
                                     "processed.", registry=reg)
        self.predicted = Counter("llamacpp:tokens_predicted", "Number of generation tokens "
                                 "processed.", registry=reg)
        self.processing = Gauge("llamacpp:requests_processing", "Number of requests "
                                "processing.", registry=reg)
        self.deferred = Gauge("llamacpp:requests_deferred", "Number of requests deferred.",
                              registry=reg)
        self.kv_cache = Gauge("llamacpp:kv_cache_usage_ratio", "KV-cache usage. 1 means 100 "
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
