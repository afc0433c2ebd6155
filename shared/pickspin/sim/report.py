"""`pickspin simulate`'s report: Markdown + PNG + JSON.

PNG: replicas (GPUs in use) and waiting requests over time with the arrival rate, for
pickspin under the default profile against the static baseline; cost per query against
accuracy for every configuration. matplotlib is imported only here (the `train` extra).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pickspin.core.settings import Settings
from pickspin.sim.runs import Environment, Result
from pickspin.sim.summary import Check, Figures, as_json
from pickspin.sim.trace import Trace, rate_series

TIMELINE_PNG = "replicas-over-time.png"
COST_PNG = "cost-vs-accuracy.png"

ASSUMPTIONS = (
    "Service time per request: TTFT drawn from the lognormal through the service's "
    "`emulation` median and p99 (else its prior TTFT), then (tokens − 1) / tokensPerSecond "
    "of decode; {tokens} output tokens per request; a stream's speed does not depend on "
    "how many share the replica.",
    "A replica serves `concurrency` requests at once; more wait in FIFO order at the "
    "service. It is ready `coldStartSeconds` after the scaler starts it (+{spawn:.1f} s "
    "process start) and costs gpus × costPerGpuHour from start to stop, idle and loading "
    "time included (GPU price per hour per service from the values file).",
    "Scaling: `policy.poll` every {polling:g} s per ScaledObject; demand = the durations of "
    "requests finished in the last {window:g} s over {window:g} s (λ×W as the recording rule "
    "computes it); pending = requests held or woken for the service + those in flight at it"
    "{pool}. Metrics are exact and instant (no scrape delay).",
    "Pick: `selection.select` on a telemetry snapshot at most {tick:g} s old "
    "(`telemetry.Window` of {tw:g} s, replicas and readiness from the scaler), then "
    "`coldplan.cold_plan`; a request goes to the first candidate in the plan's order with a "
    "ready replica (a full one queues it); with none it is held for the first once more (up "
    "to the plan's last_hold: the profile's maxColdWaitSeconds, or the whole cold start + "
    "30 s when longer) and fails after that. {overhead:.0f} ms of gateway time per request.",
    "Accuracy: the real outcome of the stand-in of the model that answered (held-out rows "
    "with real outcomes, `training.labels.stand_in`); a failed request counts as wrong. A "
    "model without an outcome on a row's source is never chosen for that row.",
)


def assumptions(env: Environment) -> list[str]:
    return [a.format(tokens=env.tokens, spawn=env.spawn_seconds, polling=env.polling_seconds,
                     window=env.demand_window_seconds, tick=env.tick_seconds,
                     tw=env.telemetry_window_seconds, overhead=1000 * env.overhead_seconds,
                     pool=" + those its pool holds with no ready replica (local scaler)"
                     if env.pool_waiting_is_pending else "") for a in ASSUMPTIONS]


def table(rows: Sequence[Figures]) -> list[str]:
    lines = ["| configuration | accuracy | $ / query | allocated $ / query | GPU-h | "
             "TTFT p50 / p99 s | latency p50 / p99 s | SLO | failed | cold starts | "
             "cold waits | slot use | peak GPUs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in rows:
        lines.append(
            f"| {f.name} | {100 * f.accuracy:.1f} % | {f.cost_per_query:.5f} | "
            f"{f.allocated_cost_per_query:.5f} | {f.gpu_hours:.1f} | "
            f"{f.ttft_p50:.2f} / {f.ttft_p99:.2f} | "
            f"{f.latency_p50:.2f} / {f.latency_p99:.2f} | {100 * f.slo_attainment:.2f} % | "
            f"{f.failed} | {f.cold_starts} | {f.cold_waits} | {100 * f.slot_utilisation:.1f} % "
            f"| {f.peak_gpus} |")
    return lines


def write_report(out: Path, settings: Settings, trace: Trace, describe: Mapping[str, Any],
                 env: Environment, results: Sequence[Result], rows: Sequence[Figures],
                 checks: Sequence[Check], sizing: Mapping[str, Any], slo_ttft: float,
                 seconds: float) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    pngs = _plots(out, settings, trace, results, rows)
    md = [f"# Pick and Spin on a {describe['shape']} trace", "",
          f"{len(trace)} requests over {trace.seconds / 3600:.2f} h "
          f"({', '.join(f'{k} {v}' for k, v in describe.items())}); prompts drawn from "
          "held-out rows with real outcomes, classified by the "
          f"{settings.routing.mode.value} router; SLO: TTFT ≤ "
          f"{slo_ttft:g} s. Simulated in {seconds:.1f} s.", ""]
    if checks:
        md += ["## Targets (default profile)", "", "| target | measured | met |",
               "|---|---|---|"]
        md += [f"| {c.target} | {c.measured} | {'yes' if c.met else '**no**'} |"
               for c in checks]
        md.append("")
    md += ["## Every configuration", "", *table(rows), ""]
    md += ["", "$ / query: every GPU-hour the run kept (idle and loading included) over the "
           "requests. Allocated $ / query: the GPU time each request occupies "
           "(`scoring.cost_per_query`: $/s × latency / concurrency), the per-request measure "
           "Eq. 2's Ĉ uses; idle replicas cost nothing in it.", ""]
    md += [f"- **{f.name}**: {f.note}" for f in rows if f.note]
    if sizing:
        md += ["", "## Static sizing (Erlang C at each service's peak 5-minute rate)", ""]
        for name, s in sizing.items():
            parts = [f"{svc} ×{n} ({s.requests[svc]} requests, peak "
                     f"{s.peak_rate[svc]:.3f} req/s)" for svc, n in s.replicas.items()]
            md.append(f"- {name}: " + ", ".join(parts))
    md += ["", "## Model assumptions", "", *[f"- {a}" for a in assumptions(env)], ""]
    md += [f"![{p}]({p})" for p in pngs]
    path = out / "simulate.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    data = {"trace": {**describe, "requests": len(trace), "seconds": trace.seconds},
            "router": settings.routing.mode.value,
            "environment": env.__dict__, "slo_ttft_seconds": slo_ttft,
            "simulated_in_seconds": round(seconds, 2),
            "targets": [c.__dict__ for c in checks],
            "configurations": [as_json(f) for f in rows],
            "sizing": {k: {"replicas": v.replicas, "peak_rate": v.peak_rate,
                           "requests": v.requests}
                       for k, v in sizing.items()},
            "assumptions": assumptions(env),
            "timeline": {r.config.name: _timeline(r, settings) for r in results}}
    (out / "simulate.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def _timeline(r: Result, settings: Settings) -> dict[str, Any]:
    gpus = np.array([settings.service(s).gpus for s in r.services])
    return {"t": r.samples.round(1).tolist(),
            "gpus": (r.replicas * gpus).sum(axis=1).tolist() if len(r.replicas) else [],
            "waiting": r.waiting.sum(axis=1).tolist() if len(r.waiting) else [],
            "replicas": {s: r.replicas[:, i].tolist() for i, s in enumerate(r.services)
                         if len(r.replicas) and r.replicas[:, i].any()}}


def _plots(out: Path, settings: Settings, trace: Trace, results: Sequence[Result],
           rows: Sequence[Figures]) -> list[str]:
    try:
        import matplotlib
    except ModuleNotFoundError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    default = f"pickspin/{settings.default_profile}"
    shown = [r for r in results if r.config.name in (default, "static-peak")] or results[:1]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    hours = 3600.0 if trace.seconds > 7200 else 60.0
    unit = "h" if hours == 3600.0 else "min"
    for r in shown:
        gpus = np.array([settings.service(s).gpus for s in r.services])
        top.step(r.samples / hours, (r.replicas * gpus).sum(axis=1), where="post",
                 label=f"{r.config.name}: GPUs in use")
        bottom.step(r.samples / hours, r.waiting.sum(axis=1), where="post",
                    label=f"{r.config.name}: requests waiting")
    edges, rate = rate_series(trace, max(trace.seconds / 200, 1.0))
    twin = top.twinx()
    twin.plot(edges / hours, rate, color="grey", alpha=0.5, label="arrivals / s")
    twin.set_ylabel("requests / s")
    top.set_ylabel("GPUs")
    bottom.set_ylabel("waiting (held or queued)")
    bottom.set_xlabel(unit)
    top.legend(loc="upper left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / TIMELINE_PNG, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for f in rows:
        marker = "o" if f.name.startswith("pickspin/") else "s"
        ax.scatter(f.cost_per_query, 100 * f.accuracy, marker=marker)
        ax.annotate(f.name, (f.cost_per_query, 100 * f.accuracy), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("GPU $ per query (log)")
    ax.set_ylabel("accuracy %")
    ax.set_title("cost against accuracy on the same trace")
    fig.tight_layout()
    fig.savefig(out / COST_PNG, dpi=100)
    plt.close(fig)
    return [TIMELINE_PNG, COST_PNG]
