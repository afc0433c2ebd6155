"""What an emulated backend does, as pure values and functions: its profile, its TTFT
distribution, its filler text.

The time to first token is drawn from a lognormal fitted to two quantiles of the
service's `emulation` block: the median fixes mu = ln(median) and the 99th percentile
fixes sigma = (ln(p99) - mu) / z_0.99, where z_0.99 = Phi^-1(0.99) ~= 2.3263. Tokens then
follow at `tokensPerSecond` per stream. (The same two-quantile fit is what llm-d's
inference simulator takes as `time-to-first-token` plus `time-to-first-token-std-dev`.)

>>> profile = EmulationProfile(ttft_ms_median=60, ttft_ms_p99=250, tokens_per_second=45,
...                            max_concurrency=64)
>>> round(profile.ttft.quantile(0.5), 3)
0.06
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, replace
from statistics import NormalDist

from pickspin.core.settings import Emulation

Z_99 = NormalDist().inv_cdf(0.99)

# Filler the emulator streams: it is a latency emulator and says so, nothing more.
FILLER_WORDS: tuple[str, ...] = (
    "emulated", "tokens", "from", "a", "pickspin", "backend", "with", "no", "model",
    "behind", "it;", "latency", "and", "queueing", "follow", "the", "profile", "of",
    "the", "real", "server", "but", "the", "words", "mean", "nothing.",
)


@dataclass(frozen=True)
class LogNormal:
    """A lognormal distribution in seconds, given by its log-space mu and sigma."""

    mu: float
    sigma: float

    @classmethod
    def from_median_p99(cls, median_s: float, p99_s: float) -> LogNormal:
        """Fit mu and sigma so that the median and the 99th percentile come back exactly."""
        if median_s <= 0 or p99_s < median_s:
            raise ValueError(f"need 0 < median <= p99, got median={median_s}, p99={p99_s}")
        mu = math.log(median_s)
        return cls(mu=mu, sigma=(math.log(p99_s) - mu) / Z_99)

    def quantile(self, q: float) -> float:
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


@dataclass(frozen=True)
class EmulationProfile:
    """The numbers one emulated backend runs with (an `Emulation` block plus overrides)."""

    ttft_ms_median: float
    ttft_ms_p99: float
    tokens_per_second: float
    max_concurrency: int
    cold_start_seconds: float = 0.0
    error_rate: float = 0.0
    crash_after_tokens: int | None = None
    default_max_tokens: int = 64
    max_model_len: int = 32768

    def __post_init__(self) -> None:
        problems = []
        if self.tokens_per_second <= 0:
            problems.append("tokens_per_second must be > 0")
        if self.max_concurrency <= 0:
            problems.append("max_concurrency must be > 0")
        if self.cold_start_seconds < 0:
            problems.append("cold_start_seconds must be >= 0")
        if not 0 <= self.error_rate <= 1:
            problems.append("error_rate must lie in [0, 1]")
        if problems:
            raise ValueError("; ".join(problems))
        LogNormal.from_median_p99(self.ttft_ms_median / 1000, self.ttft_ms_p99 / 1000)

    @classmethod
    def from_settings(cls, emulation: Emulation) -> EmulationProfile:
        return cls(
            ttft_ms_median=emulation.ttft_ms_median,
            ttft_ms_p99=emulation.ttft_ms_p99,
            tokens_per_second=emulation.tokens_per_second,
            max_concurrency=emulation.max_concurrency,
            cold_start_seconds=emulation.cold_start_seconds,
            error_rate=emulation.error_rate,
            crash_after_tokens=emulation.crash_after_tokens,
        )

    def with_overrides(
        self,
        *,
        error_rate: float | None = None,
        cold_start_seconds: float | None = None,
        max_concurrency: int | None = None,
    ) -> EmulationProfile:
        """A copy with the given fields replaced (None keeps the current value)."""
        return replace(
            self,
            error_rate=self.error_rate if error_rate is None else error_rate,
            cold_start_seconds=(self.cold_start_seconds if cold_start_seconds is None
                                else cold_start_seconds),
            max_concurrency=self.max_concurrency if max_concurrency is None else max_concurrency,
        )

    @property
    def ttft(self) -> LogNormal:
        return LogNormal.from_median_p99(self.ttft_ms_median / 1000, self.ttft_ms_p99 / 1000)

    @property
    def inter_token_seconds(self) -> float:
        return 1.0 / self.tokens_per_second

    def expected_e2e_seconds(self, tokens: int) -> float:
        """Median end-to-end time of an unqueued request producing `tokens` tokens."""
        return self.ttft.quantile(0.5) + max(tokens - 1, 0) * self.inter_token_seconds


def filler_tokens(seed_text: str, count: int) -> list[str]:
    """`count` filler tokens, the starting word chosen by a checksum of `seed_text`.

    Every token but the first carries its leading space, so joining them gives the text.
    """
    start = zlib.crc32(seed_text.encode("utf-8")) % len(FILLER_WORDS)
    words = [FILLER_WORDS[(start + i) % len(FILLER_WORDS)] for i in range(count)]
    return [w if i == 0 else f" {w}" for i, w in enumerate(words)]


def estimate_prompt_tokens(text: str) -> int:
    """A rough token count (about four characters a token), at least one."""
    return max(1, math.ceil(len(text) / 4))
