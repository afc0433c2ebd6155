"""The pure parts of the emulator: lognormal fit, profile validation, filler text."""

from __future__ import annotations

import random
import statistics

import pytest

from pickspin.core.settings import Settings
from pickspin.emulator.profile import (
    FILLER_WORDS,
    EmulationProfile,
    LogNormal,
    estimate_prompt_tokens,
    filler_tokens,
)


@pytest.mark.parametrize(("median", "p99"), [(0.06, 0.25), (0.25, 1.0), (0.128, 0.51), (0.1, 0.1)])
def test_lognormal_fit_returns_median_and_p99_exactly(median: float, p99: float) -> None:
    dist = LogNormal.from_median_p99(median, p99)
    assert dist.quantile(0.5) == pytest.approx(median, rel=1e-9)
    assert dist.quantile(0.99) == pytest.approx(p99, rel=1e-9)


@pytest.mark.parametrize(("median", "p99"), [(0.06, 0.25), (0.25, 1.0)])
def test_lognormal_samples_reproduce_median_and_p99(median: float, p99: float) -> None:
    dist = LogNormal.from_median_p99(median, p99)
    rng = random.Random(7)
    samples = sorted(dist.sample(rng) for _ in range(40_000))
    assert statistics.median(samples) == pytest.approx(median, rel=0.03)
    assert samples[int(0.99 * len(samples))] == pytest.approx(p99, rel=0.08)


@pytest.mark.parametrize(("median", "p99"), [(0.0, 1.0), (0.5, 0.4), (-1.0, 1.0)])
def test_lognormal_rejects_impossible_quantiles(median: float, p99: float) -> None:
    with pytest.raises(ValueError):
        LogNormal.from_median_p99(median, p99)


def test_profile_from_every_configured_service() -> None:
    settings = Settings.load()
    for service in settings.services:
        assert service.emulation is not None, service.name
        profile = EmulationProfile.from_settings(service.emulation)
        assert profile.ttft.quantile(0.5) == pytest.approx(service.emulation.ttft_ms_median / 1000)
        assert profile.max_concurrency == service.emulation.max_concurrency


def test_overrides_replace_only_what_is_given() -> None:
    base = EmulationProfile(60, 250, 45.0, 64, cold_start_seconds=1.0, error_rate=0.0)
    changed = base.with_overrides(error_rate=1.0, max_concurrency=2)
    assert (changed.error_rate, changed.max_concurrency) == (1.0, 2)
    assert changed.cold_start_seconds == 1.0
    assert base.with_overrides() == base


@pytest.mark.parametrize("field", [{"error_rate": 1.5}, {"max_concurrency": 0},
                                   {"cold_start_seconds": -1.0}, {"tokens_per_second": 0.0}])
def test_profile_rejects_bad_numbers(field: dict[str, float]) -> None:
    values = {"ttft_ms_median": 60.0, "ttft_ms_p99": 250.0, "tokens_per_second": 45.0,
              "max_concurrency": 64} | field
    with pytest.raises(ValueError):
        EmulationProfile(**values)  # type: ignore[arg-type]


def test_expected_e2e_is_median_ttft_plus_decode_time() -> None:
    profile = EmulationProfile(100, 400, 20.0, 8)
    assert profile.expected_e2e_seconds(11) == pytest.approx(0.1 + 10 / 20.0)


def test_filler_is_deterministic_per_prompt_and_has_the_asked_length() -> None:
    a = filler_tokens("What is the capital of France?", 40)
    assert a == filler_tokens("What is the capital of France?", 40)
    assert len(a) == 40
    assert all(t.strip() in FILLER_WORDS for t in a)
    assert not a[0].startswith(" ") and all(t.startswith(" ") for t in a[1:])
    assert filler_tokens("x", 0) == []


def test_prompt_token_estimate_is_positive_and_grows() -> None:
    assert estimate_prompt_tokens("") == 1
    assert estimate_prompt_tokens("a" * 400) == 100
