"""Per-service statistics from Prometheus: the gateway's `pickspin_*` metrics over a window.

The queries are built and their answers parsed by pure functions (`expressions`,
`parse_vector`, `service_stats`); `PrometheusStats` only runs them through a client with
`custom_query` (prometheus-api-client's `PrometheusConnect`, or a fake in tests). `connect`
and `instant_value` are the one Prometheus client of the library: the local scaler's
triggers run through them too.

Every statistic is computed over the snapshot's own window from the gateway's series (the
recording rules the ScaledObjects use have a window tied to the scrape interval). The
gateway exports no token counts, so the decode time per token stays None here (the
telemetry function fills it from `inference.completed` events).

>>> stats = PrometheusStats.connect("http://127.0.0.1:9090", settings)  # doctest: +SKIP
>>> stats.collect()["gemma-3-27b-vllm"].ttft_p99_seconds                # doctest: +SKIP
0.24
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from pickspin.core.events import ServiceStats
from pickspin.core.scoring import cost_per_query
from pickspin.core.settings import Settings
from pickspin.core.telemetry import StatsUnavailable

BY = "model, backend"
STAT_LABEL = "pickspin_stat"  # which statistic a series of the combined query answers
DEFAULT_WINDOW_SECONDS = 60.0
Key = tuple[str, str]  # (model, backend)


class Stat(StrEnum):
    REQUESTS = "requests"
    RATE = "rate"
    SUCCESS_RATIO = "success_ratio"
    LATENCY_MEAN = "latency_mean"
    LATENCY_P50 = "latency_p50"
    LATENCY_P99 = "latency_p99"
    TTFT_MEAN = "ttft_mean"
    TTFT_P50 = "ttft_p50"
    TTFT_P99 = "ttft_p99"
    INFLIGHT = "inflight"
    PENDING = "pending"


class QueryClient(Protocol):
    """What PrometheusStats needs of prometheus-api-client's `PrometheusConnect`."""

    def custom_query(self, query: str) -> list[dict[str, Any]]: ...


def promql_duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


def _mean(metric: str, w: str) -> str:
    return (f"sum by ({BY}) (rate({metric}_sum[{w}])) / "
            f"sum by ({BY}) (rate({metric}_count[{w}]))")


def _quantile(q: float, metric: str, w: str) -> str:
    return f"histogram_quantile({q}, sum by ({BY}, le) (rate({metric}_bucket[{w}])))"


def expressions(window_seconds: float) -> dict[Stat, str]:
    """PromQL for every statistic over the window (pure), on the gateway's own series: the
    recording rules' window is the scrape interval's (4×), not the snapshot's."""
    w = promql_duration(window_seconds)
    return {
        Stat.REQUESTS: f"sum by ({BY}) (increase(pickspin_requests_total[{w}]))",
        Stat.RATE: f"sum by ({BY}) (rate(pickspin_requests_total[{w}]))",
        # one expression, so both rates come from the same instant (a recording rule for
        # the denominator would lag the live numerator while traffic changes)
        Stat.SUCCESS_RATIO:
            f'sum by ({BY}) (rate(pickspin_requests_total{{outcome="success"}}[{w}]))'
            f" / sum by ({BY}) (rate(pickspin_requests_total[{w}]))",
        Stat.LATENCY_MEAN: _mean("pickspin_request_duration_seconds", w),
        Stat.LATENCY_P50: _quantile(0.5, "pickspin_request_duration_seconds", w),
        Stat.LATENCY_P99: _quantile(0.99, "pickspin_request_duration_seconds", w),
        Stat.TTFT_MEAN: _mean("pickspin_ttft_seconds", w),
        Stat.TTFT_P50: _quantile(0.5, "pickspin_ttft_seconds", w),
        Stat.TTFT_P99: _quantile(0.99, "pickspin_ttft_seconds", w),
        Stat.INFLIGHT: "sum by (service) (pickspin_inflight_requests)",
        Stat.PENDING: "sum by (service) (pickspin_pending_requests)",
    }


def combined(exprs: Mapping[Stat, str]) -> str:
    """All the expressions as one query (pure): each one's series tagged with its statistic
    in the `STAT_LABEL` label, joined by `or` (the tags differ, so no series is dropped).
    One request per snapshot instead of one per statistic: the client's per-request cost
    was most of a telemetry tick's CPU."""
    return " or ".join(f'label_replace({expr}, "{STAT_LABEL}", "{stat.value}", "", "")'
                       for stat, expr in exprs.items())


def split(result: Sequence[Mapping[str, Any]]) -> dict[Stat, list[dict[str, Any]]]:
    """The answer to `combined` → each statistic's own samples (pure; untagged ones are
    dropped)."""
    out: dict[Stat, list[dict[str, Any]]] = {stat: [] for stat in Stat}
    for sample in result:
        metric = dict(sample.get("metric", {}))
        tag = metric.pop(STAT_LABEL, None)
        if tag in out:
            out[Stat(tag)].append({**sample, "metric": metric})
    return out


def parse_vector(result: Sequence[Mapping[str, Any]],
                 labels: Sequence[str] = ("model", "backend")) -> dict[tuple[str, ...], float]:
    """An instant-vector answer → {label values: value}, dropping NaN and ±Inf (pure)."""
    out: dict[tuple[str, ...], float] = {}
    for sample in result:
        metric = sample.get("metric", {})
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            out[tuple(str(metric.get(name, "")) for name in labels)] = value
    return out


def service_stats(settings: Settings, results: Mapping[Stat, Sequence[Mapping[str, Any]]],
                  window_seconds: float) -> dict[str, ServiceStats]:
    """Query answers → statistics of every configured service (pure).

    A service without traffic in the window gets zero requests and None for the rest.
    """
    by_key = {stat: parse_vector(results.get(stat, ())) for stat in Stat
              if stat not in (Stat.INFLIGHT, Stat.PENDING)}
    inflight = parse_vector(results.get(Stat.INFLIGHT, ()), ("service",))
    pending = parse_vector(results.get(Stat.PENDING, ()), ("service",))
    out = {}
    for svc in settings.services:
        key = (svc.model, svc.backend)
        got = {stat: values.get(key) for stat, values in by_key.items()}
        rate = got[Stat.RATE] or 0.0
        requests = got[Stat.REQUESTS]
        count = round(requests) if requests is not None else round(rate * window_seconds)
        mean = got[Stat.LATENCY_MEAN]
        success = got[Stat.SUCCESS_RATIO]
        running = inflight.get((svc.name,))
        held = pending.get((svc.name,))
        out[svc.name] = ServiceStats(
            requests=count,
            rate_per_second=rate,
            latency_seconds=mean,
            latency_p50_seconds=got[Stat.LATENCY_P50],
            latency_p99_seconds=got[Stat.LATENCY_P99],
            ttft_seconds=got[Stat.TTFT_MEAN],
            ttft_p50_seconds=got[Stat.TTFT_P50],
            ttft_p99_seconds=got[Stat.TTFT_P99],
            success_ratio=min(1.0, success) if success is not None and rate > 0 else None,
            cost_per_query=cost_per_query(svc, mean) if mean is not None else None,
            running=round(running) if running is not None else None,
            pending=round(held) if held is not None else None,
        )
    return out


def connect(url: str, timeout: float = 2.0) -> QueryClient:
    """prometheus-api-client's `PrometheusConnect` with one quick retry: a telemetry tick or
    a scaler poll must not wait out the client's default backoff (1+2+4 s)."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    retry = Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504))
    client: QueryClient = PrometheusConnect(url=url, disable_ssl=True, timeout=timeout,
                                            retry=retry)
    return client


def query(client: QueryClient, promql: str) -> list[dict[str, Any]]:
    """One instant query; `StatsUnavailable` naming it when Prometheus cannot answer."""
    from prometheus_api_client.exceptions import PrometheusApiClientException
    from requests import RequestException

    try:
        return client.custom_query(promql)
    except (RequestException, PrometheusApiClientException, ValueError, KeyError) as exc:
        raise StatsUnavailable(f"prometheus: {promql}: {exc}") from None


def instant_value(client: QueryClient, promql: str) -> float | None:
    """The first sample's value of an instant query, or None for an empty result."""
    result = query(client, promql)
    try:
        return float(result[0]["value"][1]) if result else None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise StatsUnavailable(f"prometheus: {promql}: unreadable answer: {exc}") from None


class PrometheusStats:
    """Windowed statistics of every service, read from Prometheus on each call."""

    def __init__(self, client: QueryClient, settings: Settings,
                 window_seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        self.client = client
        self.settings = settings
        self.window_seconds = window_seconds
        self._query = combined(expressions(window_seconds))

    @classmethod
    def connect(cls, url: str, settings: Settings,
                window_seconds: float = DEFAULT_WINDOW_SECONDS,
                timeout: float = 2.0) -> PrometheusStats:
        return cls(connect(url, timeout), settings, window_seconds)

    def query_all(self) -> dict[Stat, list[dict[str, Any]]]:
        """Every statistic in one request (`combined`); `StatsUnavailable` if Prometheus
        cannot answer it."""
        return split(query(self.client, self._query))

    def collect(self) -> dict[str, ServiceStats]:
        return service_stats(self.settings, self.query_all(), self.window_seconds)

    def close(self) -> None:
        """Release the client's HTTP session, where it has one."""
        close = getattr(self.client, "close", None)
        if callable(close):
            close()
