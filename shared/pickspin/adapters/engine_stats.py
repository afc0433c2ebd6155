"""What a backend's own Prometheus text says about its load and latency (pure parsers).

In the manner of vLLM production-stack's `EngineStats.from_vllm_scrape(text)`, for the
engines pickspin serves. A figure the kind does not expose is None, never a made-up zero.

The names read per kind are `pickspin.core.engines.ENGINES` (the emulator writes the same
table): running, waiting and KV-cache gauges, TTFT and end-to-end histograms (mean = sum /
count), the success counter (with or without `_total`).

Series of one name are summed over their labels (engines, finish reasons), so one scrape
of one server gives one row.

>>> text = 'vllm:num_requests_running{model_name="m"} 3\\n'
>>> EngineStats.from_scrape("vllm", text).running
3.0
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from pickspin.core.engines import ENGINES, EngineNames
from pickspin.core.settings import BackendKind


def samples(names: EngineNames) -> frozenset[str]:
    """Every sample name the parser reads of an engine."""
    histograms = [f"{base}{suffix}" for base in (names.ttft, names.e2e) if base
                  for suffix in ("_sum", "_count")]
    success = [names.success, f"{names.success}_total"] if names.success else []
    return frozenset((*names.running, *names.waiting, *names.kv_cache_usage, *histograms,
                      *success))


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
        names = ENGINES[BackendKind(kind)]
        found = _sample_sums(text, samples(names))

        def first(candidates: tuple[str, ...]) -> float | None:
            return next((found[n] for n in candidates if n in found), None)

        def part(base: str | None, suffix: str) -> float | None:
            return found.get(f"{base}{suffix}") if base else None

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
