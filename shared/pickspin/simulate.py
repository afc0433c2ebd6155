"""`pickspin simulate`: a workload through the scaling policy, without running anything.

Feeds a piecewise-linear arrival rate for one service through `pickspin.policy.decide` at
KEDA's polling interval, as Little's law says the demand would be (λ × W; while a service is
at zero its arrivals wait at the router as pending requests), and reports the replicas over
time and the GPU-hours against keeping the budget always on. Writes Markdown, JSON and,
when matplotlib is installed, a PNG.

    pickspin simulate --service qwen-3-235b-vllm --rate 0:0,300:4,900:4,1200:0 --minutes 40
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

from pickspin.errors import ConfigError
from pickspin.policy import Observation, decide, scaling_for
from pickspin.settings import Settings


@dataclass(frozen=True)
class Step:
    t: float
    rate: float
    demand: float
    pending: float
    replicas: int
    reason: str


def parse_rate(text: str) -> list[tuple[float, float]]:
    """`t:rate,t:rate,…` (seconds, requests per second), sorted by time."""
    points = []
    for part in text.split(","):
        t, _, rate = part.partition(":")
        try:
            points.append((float(t), float(rate)))
        except ValueError:
            raise ValueError(f"--rate: {part!r} is not 'seconds:requests-per-second'") from None
    if not points or any(r < 0 or t < 0 for t, r in points):
        raise ValueError("--rate: give at least one point, times and rates >= 0")
    return sorted(points)


def rate_at(points: list[tuple[float, float]], t: float) -> float:
    """Linear between points, flat outside them."""
    if t <= points[0][0]:
        return points[0][1]
    for (t0, r0), (t1, r1) in pairwise(points):
        if t0 <= t <= t1:
            return r0 if t1 == t0 else r0 + (r1 - r0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def run(settings: Settings, service: str, points: list[tuple[float, float]], seconds: float,
        profile: str | None = None, polling: int = 15) -> list[Step]:
    """Policy decisions every `polling` seconds (pure)."""
    params = scaling_for(settings, service, profile, polling_interval=polling)
    latency = settings.service(service).priors.latency_seconds
    replicas, last_active = params.min_replicas, 0.0
    recent: list[tuple[float, int]] = []
    steps = []
    t = 0.0
    while t <= seconds:
        rate = rate_at(points, t)
        demand = rate * latency if replicas > 0 else 0.0
        pending = rate * latency if replicas == 0 else 0.0
        window = [r for at, r in recent if t - at <= params.stabilization_seconds]
        d = decide(Observation(demand, pending, replicas, t - last_active, tuple(window)), params)
        if d.active:
            last_active = t
        if d.recommendation is not None:
            recent.append((t, d.recommendation))
        replicas = d.replicas
        steps.append(Step(t, round(rate, 4), round(demand, 4), round(pending, 4), replicas,
                          d.reason.value))
        t += polling
    return steps


def gpu_hours(settings: Settings, service: str, steps: list[Step], polling: int) -> float:
    gpus = settings.service(service).gpus
    return sum(s.replicas for s in steps) * polling * gpus / 3600


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pickspin simulate", description=__doc__)
    parser.add_argument("--config", help="values file (default: $PICKSPIN_CONFIG or the chart's)")
    parser.add_argument("--service", required=True, help="<model>-<backend>")
    parser.add_argument("--profile", help="operator profile (default: the values' default)")
    parser.add_argument("--rate", required=True, help="arrival rate points 't:rps,t:rps,…'")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--polling", type=int, default=15, help="KEDA pollingInterval (s)")
    parser.add_argument("--out", type=Path, default=Path("reports/simulate"))
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(args.config)
        steps = run(settings, args.service, parse_rate(args.rate), args.minutes * 60,
                    args.profile, args.polling)
    except ConfigError as exc:
        print(exc.message)
        return 2
    except (KeyError, ValueError) as exc:
        print(f"pickspin simulate: {exc}")
        return 2
    budget = settings.service(args.service).max_replicas
    used = gpu_hours(settings, args.service, steps, args.polling)
    always = budget * settings.service(args.service).gpus * (steps[-1].t + args.polling) / 3600
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"service": args.service, "profile": args.profile or settings.default_profile,
               "gpu_hours": round(used, 3), "gpu_hours_always_on_budget": round(always, 3),
               "peak_replicas": max(s.replicas for s in steps),
               "steps": [asdict(s) for s in steps]}
    (args.out / "simulate.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# Simulated scaling of {args.service} ({summary['profile']} profile)", "",
             f"GPU-hours: {used:.3f} (always on at the budget of {budget}: {always:.3f})", "",
             "| t (s) | rate (req/s) | demand λ×W | pending | replicas | reason |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s.t:.0f} | {s.rate} | {s.demand} | {s.pending} | {s.replicas} | {s.reason} |"
              for s in steps]
    (args.out / "simulate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:3]))
    print(f"written {args.out}/simulate.md, simulate.json{_plot(steps, args.out)}")
    return 0


def _plot(steps: list[Step], out: Path) -> str:
    try:
        import matplotlib
    except ModuleNotFoundError:
        return " (no PNG: matplotlib is not installed)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.step([s.t for s in steps], [s.replicas for s in steps], where="post", label="replicas")
    ax.plot([s.t for s in steps], [s.demand + s.pending for s in steps], label="demand λ×W")
    ax.set_xlabel("seconds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "simulate.png", dpi=100)
    plt.close(fig)
    return ", simulate.png"
