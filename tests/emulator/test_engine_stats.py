"""EngineStats.from_scrape on each real server's format and on the emulator's own text."""

from __future__ import annotations

import pytest

from pickspin.adapters.engine_stats import EngineStats
from pickspin.core.settings import BackendKind
from pickspin.emulator.metrics import make_metrics

from . import samples


def test_vllm_sample_sums_engines_and_finish_reasons() -> None:
    stats = EngineStats.from_scrape(BackendKind.VLLM, samples.VLLM)
    assert stats == EngineStats(running=4.0, waiting=2.0, kv_cache_usage=0.25, ttft_sum=2.4,
                                ttft_count=16.0, e2e_sum=48.0, e2e_count=16.0,
                                success_count=16.0)
    assert stats.mean_ttft == pytest.approx(0.15)
    assert stats.mean_e2e == pytest.approx(3.0)


def test_old_vllm_kv_cache_name_is_read_and_missing_figures_are_none() -> None:
    stats = EngineStats.from_scrape("vllm", samples.VLLM_OLD)
    assert (stats.running, stats.kv_cache_usage) == (2.0, 0.5)
    assert stats.waiting is None and stats.success_count is None and stats.mean_ttft is None


def test_tgi_sample() -> None:
    stats = EngineStats.from_scrape(BackendKind.TGI, samples.TGI)
    assert stats == EngineStats(running=8.0, waiting=4.0, kv_cache_usage=None, ttft_sum=None,
                                ttft_count=None, e2e_sum=30.5, e2e_count=15.0,
                                success_count=15.0)


def test_trtllm_sample() -> None:
    stats = EngineStats.from_scrape(BackendKind.TRTLLM, samples.TRTLLM)
    assert stats == EngineStats(running=5.0, waiting=1.0, kv_cache_usage=0.125, ttft_sum=0.9,
                                ttft_count=9.0, e2e_sum=18.0, e2e_count=9.0, success_count=9.0)


def test_trtllm_basic_metrics_only() -> None:
    stats = EngineStats.from_scrape("trtllm", samples.TRTLLM_BASIC)
    assert (stats.success_count, stats.mean_e2e) == (3.0, 2.0)
    assert stats.running is None and stats.kv_cache_usage is None and stats.ttft_count is None


def test_another_kinds_text_yields_nothing() -> None:
    assert EngineStats.from_scrape("tgi", samples.VLLM) == EngineStats()
    assert EngineStats.from_scrape("vllm", "") == EngineStats()


def test_garbage_and_unknown_kind_raise_value_error() -> None:
    with pytest.raises(ValueError, match="Prometheus"):
        EngineStats.from_scrape("vllm", "vllm:num_requests_running{model_name= 3 {")
    with pytest.raises(ValueError):
        EngineStats.from_scrape("sglang", samples.VLLM)


@pytest.mark.parametrize("kind", list(BackendKind))
def test_emulator_text_round_trips(kind: BackendKind) -> None:
    metrics = make_metrics(kind, "llama-3-70b")
    metrics.set_load(running=3, waiting=2, capacity=4)
    for ttft, e2e in ((0.1, 1.0), (0.3, 2.0)):
        metrics.request_received()
        metrics.request_finished(ttft=ttft, e2e=e2e, queued=0.05, prompt_tokens=5,
                                 generation_tokens=10, finish_reason="length")
    stats = EngineStats.from_scrape(kind, metrics.render().decode())
    assert (stats.running, stats.waiting) == (3.0, 2.0)
    if kind is BackendKind.LLAMACPP:  # llama-server exports no latency or success series
        assert stats.success_count is None and stats.e2e_count is None
        assert stats.kv_cache_usage == 0.75
        return
    assert stats.success_count == 2.0
    assert (stats.e2e_count, stats.e2e_sum) == (2.0, pytest.approx(3.0))
    if kind is BackendKind.TGI:
        assert stats.kv_cache_usage is None and stats.ttft_count is None
    else:
        assert stats.kv_cache_usage == 0.75
        assert (stats.ttft_count, stats.ttft_sum) == (2.0, pytest.approx(0.4))
