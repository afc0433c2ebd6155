"""Figures of one simulated run, and the targets they are checked against (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pickspin.core.scoring import cost_per_query
from pickspin.core.settings import Settings
from pickspin.sim.runs import Result

#: "equal SLO attainment": within this many points of the static baseline's
SLO_TOLERANCE = 0.005


@dataclass(frozen=True)
class Figures:
    name: str
    note: str
    requests: int
    failed: int
    accuracy: float
    gpu_hours: float
    gpu_dollars: float
    cost_per_query: float
    #: the paper's per-request measure: Σ `scoring.cost_per_query(service, latency)` / requests
    #: (GPU time a request occupies, shared by concurrency; idle GPUs cost nothing)
    allocated_cost_per_query: float
    ttft_p50: float
    ttft_p99: float
    latency_p50: float
    latency_p99: float
    slo_attainment: float
    cold_starts: int
    cold_waits: int
    substitutes: int
    holds: int
    slot_utilisation: float
    replica_seconds: float
    peak_gpus: int
    model_share: Mapping[str, float]


def _q(values: np.ndarray, q: float) -> float:
    served = values[~np.isnan(values)]
    return float(np.percentile(served, q)) if len(served) else float("nan")


def figures(result: Result, settings: Settings, slo_ttft: float) -> Figures:
    o = result.outcome
    n = len(o.ttft)
    served = o.service >= 0
    models = Counter(settings.services[i].model for i in o.service[served])
    gpus = np.array([settings.service(s).gpus for s in result.services])
    actions = Counter(o.action)
    peak = int((result.replicas * gpus).sum(axis=1).max()) if len(result.replicas) else 0
    per_second = np.array([cost_per_query(settings.service(s), 1.0) for s in result.services])
    allocated = float(np.sum(per_second[o.service[served]] * o.latency[served]))
    return Figures(
        name=result.config.name, note=result.config.note, requests=n,
        failed=n - int(served.sum()) + int(np.isnan(o.ttft[served]).sum()),
        accuracy=float(o.correct.mean()) if n else float("nan"),
        gpu_hours=sum(result.gpu_seconds.values()) / 3600,
        gpu_dollars=sum(result.gpu_dollars.values()),
        cost_per_query=sum(result.gpu_dollars.values()) / max(n, 1),
        allocated_cost_per_query=allocated / max(n, 1),
        ttft_p50=_q(o.ttft, 50), ttft_p99=_q(o.ttft, 99),
        latency_p50=_q(o.latency, 50), latency_p99=_q(o.latency, 99),
        # a request never answered misses the SLO
        slo_attainment=float(np.mean(np.nan_to_num(o.ttft, nan=np.inf) <= slo_ttft)) if n
        else float("nan"),
        cold_starts=sum(result.cold_starts.values()), cold_waits=int(o.cold_wait.sum()),
        substitutes=actions.get("substitute", 0),
        holds=actions.get("hold", 0) + actions.get("hold-timeout", 0),
        slot_utilisation=result.busy_slot_seconds / max(result.ready_slot_seconds, 1e-9),
        replica_seconds=sum(result.replica_seconds.values()), peak_gpus=peak,
        model_share={m: round(c / max(int(served.sum()), 1), 4)
                     for m, c in sorted(models.items())})


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    met: bool


def targets(by_name: Mapping[str, Figures], default: str) -> list[Check]:
    """The issue's targets for the default profile against the baselines present."""
    pick = by_name.get(f"pickspin/{default}")
    out: list[Check] = []
    if pick is None:
        return out
    for name in ("static-peak", "static-lean"):
        static = by_name.get(name)
        if static is None:
            continue
        saving = 1 - pick.cost_per_query / static.cost_per_query
        equal = pick.slo_attainment >= static.slo_attainment - SLO_TOLERANCE
        out.append(Check(
            f"GPU cost per query ≥ 33 % below {name} (always on, sized for the SLO at peak) "
            f"at equal SLO attainment (within {100 * SLO_TOLERANCE:.1f} points)",
            f"{100 * saving:.1f} % below (${pick.cost_per_query:.5f} vs "
            f"${static.cost_per_query:.5f}); SLO attainment {100 * pick.slo_attainment:.2f} % "
            f"vs {100 * static.slo_attainment:.2f} %", saving >= 0.33 and equal))
    rnd = by_name.get("random-assignment")
    if rnd is not None:
        out.append(Check("accuracy ≥ random assignment + 5 points",
                         f"{100 * pick.accuracy:.1f} % vs {100 * rnd.accuracy:.1f} % "
                         f"({100 * (pick.accuracy - rnd.accuracy):+.1f} points)",
                         pick.accuracy >= rnd.accuracy + 0.05))
    large = by_name.get("always-large")
    if large is not None:
        out.append(Check("accuracy ≥ 95 % of always-large",
                         f"{100 * pick.accuracy / large.accuracy:.1f} % of it "
                         f"({100 * pick.accuracy:.1f} % vs {100 * large.accuracy:.1f} %)",
                         pick.accuracy >= 0.95 * large.accuracy))
    return out


def as_json(f: Figures) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(f).items()}
