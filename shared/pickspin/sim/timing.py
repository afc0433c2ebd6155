"""The simulator's service-time model: what one request costs a service, in seconds and
dollars, from the values file alone.

- Time to first token: lognormal through the `emulation` block's median and p99 (the same
  two-quantile fit the emulated backends draw from, `emulator.profile.LogNormal`); a
  service without an emulation block has the constant `priors.ttftSeconds`.
- Decode: `(tokens − 1) / tokensPerSecond` (emulation), else the prior's latency minus its
  TTFT spread over `REFERENCE_TOKENS` tokens. A stream's speed does not depend on how many
  streams share the replica (as in the emulator; a real GPU slows down with batch size).
- A replica serves `concurrency` requests at once; more wait in FIFO order.
- A replica is ready `coldStartSeconds` after it is started (plus the process start-up the
  local run adds, `spawn_seconds`), and costs `gpus × costPerGpuHour` from start to stop,
  loading and idle time included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pickspin.core.scoring import REFERENCE_TOKENS
from pickspin.core.settings import Service
from pickspin.emulator.profile import LogNormal


@dataclass(frozen=True)
class ServiceTiming:
    name: str
    ttft_mu: float
    ttft_sigma: float
    seconds_per_token: float
    concurrency: int
    cold_start_seconds: float
    gpus: int
    dollars_per_gpu_hour: float

    @classmethod
    def of(cls, svc: Service, spawn_seconds: float = 0.0) -> ServiceTiming:
        em = svc.emulation
        if em is not None:
            fit = LogNormal.from_median_p99(em.ttft_ms_median / 1000, em.ttft_ms_p99 / 1000)
            mu, sigma, per_token = fit.mu, fit.sigma, 1.0 / em.tokens_per_second
        else:
            mu, sigma = math.log(svc.priors.ttft_seconds), 0.0
            per_token = max(svc.priors.latency_seconds - svc.priors.ttft_seconds, 0.0) \
                / (REFERENCE_TOKENS - 1)
        return cls(svc.name, mu, sigma, per_token, svc.concurrency,
                   svc.cold_start_seconds + spawn_seconds, svc.gpus, svc.cost_per_gpu_hour)

    def ttft(self, z: float) -> float:
        """The TTFT at standard-normal draw `z`."""
        return math.exp(self.ttft_mu + self.ttft_sigma * z)

    @property
    def mean_ttft(self) -> float:
        return math.exp(self.ttft_mu + self.ttft_sigma**2 / 2)

    def decode_seconds(self, tokens: int) -> float:
        return max(tokens - 1, 0) * self.seconds_per_token

    def mean_service_seconds(self, tokens: int) -> float:
        return self.mean_ttft + self.decode_seconds(tokens)

    @property
    def dollars_per_replica_second(self) -> float:
        return self.gpus * self.dollars_per_gpu_hour / 3600
