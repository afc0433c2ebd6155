"""What a backend's own Prometheus text says about its load and latency (pure parsers).

In the manner of vLLM production-stack's `EngineStats.from_vllm_scrape(text)`, for the
engines pickspin serves. A figure the kind does not expose is None, never a made-up zero.

Names read per kind (vLLM; TGI; trtllm-serve). llama-server (`--metrics`) gives running
`llamacpp:requests_processing`, waiting `llamacpp:requests_deferred` and kv_cache_usage
`llamacpp:kv_cache_usage_ratio`, and no latency or success series.

- running: `vllm:num_requests_running`; `tgi_batch_current_size`;
  `trtllm_num_requests_running`
- waiting: `vllm:num_requests_waiting`; `tgi_queue_size`; `trtllm_num_requests_waiting`
- kv_cache_usage: `vllm:kv_cache_usage_perc` (before v0.10 `vllm:gpu_cache_usage_perc`);
  none; `trtllm_kv_cache_utilization`
- ttft (histogram): `vllm:time_to_first_token_seconds`; none;
  `trtllm_time_to_first_token_seconds`
- e2e (histogram): `vllm:e2e_request_latency_seconds`; `tgi_request_duration`;
  `trtllm_e2e_request_latency_seconds`
- success (counter): `vllm:request_success_total`; `tgi_request_success` (no `_total`);
  `trtllm_request_success_total`

Series of one name are summed over their labels (engines, finish reasons), so one scrape
of one server gives one row.

>>> text = 'vllm:num_requests_running{model_name="m"} 3\\n'
>>> EngineStats.from_scrape("vllm", text).running
3.0
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from pickspin.core.settings import BackendKind


@dataclass(frozen=True)
class _Names:
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_cache_usage: tuple[str, ...] = ()
    ttft: str | None = None  # histogram base name
    e2e: str | None = None
    success: str | None = None  # counter base name, with or without `_total`


    def samples(self) -> frozenset[str]:
        """Every sample name these fields are read from."""
        histograms = [f"{base}{suffix}" for base in (self.ttft, self.e2e) if base
                      for suffix in ("_sum", "_count")]
        success = [self.success, f"{self.success}_total"] if self.success else []
        return frozenset((*self.running, *self.waiting, *self.kv_cache_usage, *histograms,
                          *success))


NAMES: dict[BackendKind, _Names] = {
    BackendKind.VLLM: _Names(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        kv_cache_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        ttft="vllm:time_to_first_token_seconds",
        e2e="vllm:e2e_request_latency_seconds",
        success="vllm:request_success",
    ),
    BackendKind.TGI: _Names(
        running=("tgi_batch_current_size",),
        waiting=("tgi_queue_size",),
        e2e="tgi_request_duration",
        success="tgi_request_success",
    ),
    BackendKind.TRTLLM: _Names(
        running=("trtllm_num_requests_running",),
        waiting=("trtllm_num_requests_waiting",),
        kv_cache_usage=("trtllm_kv_cache_utilization",),
        ttft="trtllm_time_to_first_token_seconds",
        e2e="trtllm_e2e_request_latency_seconds",
        success="trtllm_request_success",
    ),
    # llama-server --metrics: busy and deferred requests, KV-cache use; no latency histograms
    BackendKind.LLAMACPP: _Names(
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        kv_cache_usage=("llamacpp:kv_cache_usage_ratio",),
    ),
}


@dataclass(frozen=True)
class EngineStats:
    """One scrape of one backend. None: the kind does not expose it, or it was absent."""

    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    ttft_sum: float | None = None
    ttft_count: float | None = None
    e2e_sum: float | None = None
    e2e_count: float | None = None
    success_count: float | None = None

    @property
    def mean_ttft(self) -> float | None:
        """Mean TTFT since the server started (None without observations)."""
        return _ratio(self.ttft_sum, self.ttft_count)

    @property
    def mean_e2e(self) -> float | None:
        return _ratio(self.e2e_sum, self.e2e_count)

    @classmethod
    def from_scrape(cls, kind: BackendKind | str, text: str) -> EngineStats:
        """Parse Prometheus text exposition of a `kind` server.

        Raises ValueError if `kind` is unknown or the text is not Prometheus text format.
        """
        names = NAMES[BackendKind(kind)]
        samples = _sample_sums(text, names.samples())

        def first(candidates: tuple[str, ...]) -> float | None:
            return next((samples[n] for n in candidates if n in samples), None)

        def part(base: str | None, suffix: str) -> float | None:
            return samples.get(f"{base}{suffix}") if base else None

        success = None
        if names.success:
            success = first((f"{names.success}_total", names.success))
        return cls(
            running=first(names.running),
            waiting=first(names.waiting),
            kv_cache_usage=first(names.kv_cache_usage),
            ttft_sum=part(names.ttft, "_sum"),
            ttft_count=part(names.ttft, "_count"),
            e2e_sum=part(names.e2e, "_sum"),
            e2e_count=part(names.e2e, "_count"),
            success_count=success,
        )


def _sample_sums(text: str, wanted: frozenset[str]) -> dict[str, float]:
    """Sample name → sum of its values over all label sets, for the `wanted` names only:
    their lines are picked before parsing (a server's scrape has many more series, and the
    parser costs about a millisecond per scrape on all of them)."""
    lines = [line for line in text.splitlines()
             if line and line[0] != "#" and _name(line) in wanted]
    sums: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families("\n".join(lines) + "\n"):
            for sample in family.samples:
                sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"not Prometheus text format: {exc}") from None
    return sums


def _name(line: str) -> str:
    """The metric name a sample line starts with."""
    end = len(line)
    for stop in ("{", " ", "\t"):
        if (at := line.find(stop, 0, end)) != -1:
            end = at
    return line[:end]


def _ratio(total: float | None, count: float | None) -> float | None:
    if total is None or not count:
        return None
    return total / count
