"""The metric names each serving engine exposes: one table for the emulator, which writes
them, and for `pickspin.adapters.engine_stats`, which reads them (pure data).

Names as the real servers expose them (checked against their sources):

- vLLM (v1 engine, `vllm/v1/metrics/loggers.py`), at `/metrics`, labels `model_name` and
  `engine`; before v0.10 the KV-cache gauge was `vllm:gpu_cache_usage_perc`.
- TGI (router, Rust `metrics` crate), at `/metrics`, no labels; counters without a `_total`
  suffix; no TTFT histogram.
- trtllm-serve (`tensorrt_llm/metrics/collector.py`), at `/prometheus/metrics`, labels
  `model_name` and `engine_type`; the gauges only in releases after 1.1.
- llama-server (`--metrics`), at `/metrics`, no labels, `llamacpp:` prefix; no latency
  histograms and no success counter.

Counters are named without `_total` (prometheus-client adds it; TGI's exporter does not).
"""

from __future__ import annotations

from dataclasses import dataclass

from pickspin.core.settings import BackendKind


@dataclass(frozen=True)
class EngineNames:
    """One engine's series. A tuple lists the current name first, then older ones a reader
    also accepts; None: the engine has no such series."""

    path: str = "/metrics"
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_cache_usage: tuple[str, ...] = ()
    ttft: str | None = None  # histogram
    e2e: str | None = None  # histogram
    success: str | None = None  # counter
    queue_time: str | None = None  # histogram of time spent queued
    requests: str | None = None  # counter of requests received
    prompt_tokens: str | None = None  # counter
    generation_tokens: str | None = None  # counter


ENGINES: dict[BackendKind, EngineNames] = {
    BackendKind.VLLM: EngineNames(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        kv_cache_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        ttft="vllm:time_to_first_token_seconds",
        e2e="vllm:e2e_request_latency_seconds",
        success="vllm:request_success",
        prompt_tokens="vllm:prompt_tokens",
        generation_tokens="vllm:generation_tokens",
    ),
    BackendKind.TGI: EngineNames(
        running=("tgi_batch_current_size",),
        waiting=("tgi_queue_size",),
        e2e="tgi_request_duration",
        success="tgi_request_success",
        queue_time="tgi_request_queue_duration",
        requests="tgi_request_count",
    ),
    BackendKind.TRTLLM: EngineNames(
        path="/prometheus/metrics",
        running=("trtllm_num_requests_running",),
        waiting=("trtllm_num_requests_waiting",),
        kv_cache_usage=("trtllm_kv_cache_utilization",),
        ttft="trtllm_time_to_first_token_seconds",
        e2e="trtllm_e2e_request_latency_seconds",
        success="trtllm_request_success",
        queue_time="trtllm_request_queue_time_seconds",
    ),
    BackendKind.LLAMACPP: EngineNames(
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        kv_cache_usage=("llamacpp:kv_cache_usage_ratio",),
        prompt_tokens="llamacpp:prompt_tokens",
        generation_tokens="llamacpp:tokens_predicted",
    ),
}
