"""A profile's settings (paper Sec. 3): the Eq. 2 weights and the scaling they imply (paper
Algorithm 1), with the warm pools scheduled at set times of the day (KEDA `cron` triggers) and
the clock arithmetic of those windows. Part of `pickspin.core.settings`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from pickspin.core.configmodel import ConfigModel as _Model


class Weights(_Model):
    """(α, λ, μ) of paper Eq. 2: relevance, latency and cost."""

    relevance: float = Field(ge=0)
    latency: float = Field(ge=0)
    cost: float = Field(ge=0)


Tier = Literal["small", "medium", "large"]
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ScheduledPool(_Model):
    """Warm replicas per tier between two times of the day, every day (a KEDA `cron`
    trigger on the tier's designated services: `desiredReplicas` from `start` to `end`)."""

    # -- "HH:MM" in the profile's `timezone`; a window may cross midnight (21:00 → 07:00)
    start: str = Field(pattern=_CLOCK)
    end: str = Field(pattern=_CLOCK)
    # -- replicas kept warm per tier within the window, placed as `warmPool` is
    warm_pool: dict[Tier, int] = Field(default_factory=dict)
    # -- replicas kept warm on named services (<model>-<backend>) within the window; a name
    #    the matrix does not have is skipped, as a tier without services is (a matrix cut
    #    down to some services, `pickspin up --services`, keeps its profiles)
    services: dict[str, int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> ScheduledPool:
        if self.start == self.end:
            raise ValueError(f"a scheduled pool's start and end differ (KEDA cron), got "
                             f"{self.start} twice")
        bad = {k: n for k, n in (self.warm_pool | self.services).items() if n < 0}
        if bad:
            raise ValueError(f"scheduled replicas must be >= 0, got {bad}")
        return self

    @property
    def seconds(self) -> tuple[int, int]:
        """(start, end) in seconds after midnight."""
        return clock_seconds(self.start), clock_seconds(self.end)

    def covers(self, time_of_day: float) -> bool:
        """Whether the window holds `time_of_day` (seconds after midnight, local); the
        start is in it, the end is not."""
        return covers(*self.seconds, time_of_day)


def clock_seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def local_time_of_day(epoch_seconds: float, timezone: str) -> float:
    """Seconds after midnight in `timezone` (IANA) at `epoch_seconds`."""
    local = datetime.fromtimestamp(epoch_seconds, ZoneInfo(timezone))
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def covers(start: int, end: int, time_of_day: float) -> bool:
    """`time_of_day` in [start, end) of a daily window (crossing midnight when end < start)."""
    t = time_of_day % 86_400
    return start <= t < end if start < end else t >= start or t < end


class Scaling(_Model):
    """The Spin half of a profile (paper Algorithm 1)."""

    # -- replicas kept warm per model tier
    warm_pool: dict[Tier, int] = Field(default_factory=dict)
    # -- more replicas warm at set times of the day (KEDA `cron` triggers); a service keeps
    #    the largest of its `warmPool` share and every window that holds the time
    schedule: tuple[ScheduledPool, ...] = ()
    # -- IANA time zone of the schedule's times
    timezone: str = "UTC"
    # -- `tier`: warmPool[tier] replicas across the tier, on its designated services
    #    (`pickspin.core.warmpool.warm_order`); `service`: warmPool[tier] on every service of it
    warm_pool_scope: Literal["tier", "service"] = "tier"
    # -- idle seconds before a backend scales to zero
    cooldown_seconds: int = Field(default=300, ge=0)
    # -- fraction of a replica's concurrency that the scaler targets
    target_utilization: float = Field(default=0.8, gt=0, le=1)
    # -- seconds a scale-down recommendation must hold before it is applied
    scale_down_stabilization_seconds: int = Field(default=120, ge=0)
    # -- what to do when the best service is cold: hold the request or serve a warm substitute
    cold_start: Literal["hold", "substitute"] = "substitute"
    # -- longest time a request is held for a cold backend
    max_cold_wait_seconds: float = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _pools_non_negative(self) -> Scaling:
        bad = {tier: n for tier, n in self.warm_pool.items() if n < 0}
        if bad:
            raise ValueError(f"warmPool must be >= 0, got {bad}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r} (an IANA name such as "
                             "UTC or Europe/Berlin)") from None
        return self


class Profile(_Model):
    weights: Weights
    scaling: Scaling = Field(default_factory=Scaling)
    # -- what Ĉ prices (`pickspin.core.scoring.CostBasis`): `allocated`, the GPU time a
    #    request occupies; `billed`, the replica-seconds the choice adds to the GPU bill
    cost_basis: Literal["allocated", "billed"] = "allocated"
