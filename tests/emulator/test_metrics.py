"""The emulator exposes exactly the real servers' metric names and labels per kind."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from pickspin.core.settings import BackendKind
from pickspin.emulator.metrics import make_metrics

EXPECTED = {
    BackendKind.VLLM: {
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_sum", "vllm:time_to_first_token_seconds_count",
        "vllm:e2e_request_latency_seconds_sum", "vllm:e2e_request_latency_seconds_count",
        "vllm:request_success_total",
    },
    BackendKind.TGI: {
        "tgi_queue_size", "tgi_batch_current_size", "tgi_request_count", "tgi_request_success",
        "tgi_request_duration_sum", "tgi_request_duration_count",
    },
    BackendKind.TRTLLM: {
        "trtllm_time_to_first_token_seconds_sum", "trtllm_time_to_first_token_seconds_count",
        "trtllm_e2e_request_latency_seconds_sum", "trtllm_kv_cache_utilization",
        "trtllm_num_requests_running", "trtllm_num_requests_waiting",
        "trtllm_request_success_total",
    },
    BackendKind.LLAMACPP: {
        "llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total",
        "llamacpp:requests_processing", "llamacpp:requests_deferred",
        "llamacpp:kv_cache_usage_ratio",
    },
}
LABELS = {
    BackendKind.VLLM: {"model_name": "qwen-3-235b", "engine": "0"},
    BackendKind.TGI: {},
    BackendKind.TRTLLM: {"model_name": "qwen-3-235b", "engine_type": "trtllm"},
    BackendKind.LLAMACPP: {},
}


def rendered(kind: BackendKind) -> str:
    metrics = make_metrics(kind, "qwen-3-235b")
    metrics.set_load(1, 0, 48)
    metrics.request_received()
    metrics.request_finished(ttft=0.2, e2e=2.0, queued=0.0, prompt_tokens=4,
                             generation_tokens=8, finish_reason="stop")
    return metrics.render().decode()


def sample_names(text: str) -> set[str]:
    """Names exactly as written on the sample lines (not as a parser normalises them)."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0]
            for line in text.splitlines() if line and not line.startswith("#")}


@pytest.mark.parametrize("kind", list(BackendKind))
def test_real_names_are_exposed_verbatim(kind: BackendKind) -> None:
    names = sample_names(rendered(kind))
    assert EXPECTED[kind] <= names, EXPECTED[kind] - names


@pytest.mark.parametrize("kind", list(BackendKind))
def test_labels_are_the_real_servers(kind: BackendKind) -> None:
    for family in text_string_to_metric_families(rendered(kind)):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            own = {k: v for k, v in sample.labels.items() if k not in ("le", "finished_reason")}
            assert own == LABELS[kind], sample


def test_tgi_counters_have_no_total_suffix_and_no_created_series() -> None:
    text = rendered(BackendKind.TGI)
    assert "# TYPE tgi_request_count counter" in text
    assert "_total" not in text and "_created" not in text
    assert re.search(r"^tgi_request_count 1\.0$", text, re.M)


def test_paths_per_kind() -> None:
    assert make_metrics("vllm", "m").path == "/metrics"
    assert make_metrics("tgi", "m").path == "/metrics"
    assert make_metrics("trtllm", "m").path == "/prometheus/metrics"


def test_each_app_has_its_own_registry() -> None:
    a, b = make_metrics("vllm", "m"), make_metrics("vllm", "m")  # no duplicate-name clash
    a.set_load(5, 0, 10)
    assert "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 0.0" in b.render().decode()
    registry = CollectorRegistry()
    make_metrics("tgi", "m", registry=registry)
    assert registry.get_sample_value("tgi_queue_size") == 0.0


def test_kv_cache_is_fraction_of_slots_in_use() -> None:
    metrics = make_metrics("vllm", "m")
    metrics.set_load(running=16, waiting=3, capacity=64)
    text = metrics.render().decode()
    assert 'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25' in text
