"""What a simulated run is given (where it runs, how Pick and Spin are configured) and what
it gives back (per request and per service), as plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Config.model for a uniformly random model per request
RANDOM_ASSIGNMENT = "random-assignment"


@dataclass(frozen=True)
class Environment:
    """Where the system runs: a cluster (KEDA's 15 s polls, 30 s scrapes) or this machine."""

    polling_seconds: float = 15.0
    tick_seconds: float = 5.0
    #: the recording rules' rate window: 4 × the scrape interval
    demand_window_seconds: float = 120.0
    telemetry_window_seconds: float = 60.0
    #: process start-up on top of a service's cold start (the local run's emulator)
    spawn_seconds: float = 0.0
    #: gateway, classifier and selector time added to every request's TTFT
    overhead_seconds: float = 0.0
    #: the local scaler adds the requests its pool holds to the pending trigger
    pool_waiting_is_pending: bool = False
    tokens: int = 128
    sample_seconds: float = 60.0
    #: the time of day the trace starts at (seconds after midnight in the profile's
    #: timezone), which the scheduled warm pools read: a generated day starts at midnight
    start_of_day: float = 0.0


CLUSTER = Environment()
LOCAL = Environment(polling_seconds=1.0, tick_seconds=5.0, demand_window_seconds=4.0,
                    spawn_seconds=1.0, overhead_seconds=0.02, pool_waiting_is_pending=True,
                    sample_seconds=5.0)


@dataclass(frozen=True)
class Config:
    """One way of running the trace: Pick (a profile and strategy, a fixed model, or
    uniform random assignment) and Spin (the profile's policy, or fixed replicas)."""

    name: str
    profile: str
    strategy: str | None = None
    #: a concrete model (the gateway's skip-Pick path), or RANDOM_ASSIGNMENT
    model: str | None = None
    #: fixed ready replicas per service (absent: not deployed); None = the scaling policy
    static: Mapping[str, int] | None = None
    note: str = ""


@dataclass
class Outcome:
    """Per request, in trace order (NaN/−1 where a request was never served)."""

    service: np.ndarray
    ttft: np.ndarray
    latency: np.ndarray
    correct: np.ndarray
    cold_wait: np.ndarray
    action: list[str]


@dataclass
class Result:
    config: Config
    services: list[str]
    outcome: Outcome
    replica_seconds: dict[str, float]
    gpu_dollars: dict[str, float]
    gpu_seconds: dict[str, float]
    cold_starts: dict[str, int]
    busy_slot_seconds: float
    ready_slot_seconds: float
    horizon: float
    #: sample times, and per service replicas (not draining), ready replicas, waiting requests
    samples: np.ndarray
    replicas: np.ndarray
    ready: np.ndarray
    waiting: np.ndarray
    #: requests no service could take (selection found no candidate)
    errors: int = 0
    #: requests held twice in vain (the gateway's 503 after its cold-start waits)
    failed: int = 0
