"""The simulator against the real local run: one short trace through `pickspin up` (emulated
backends, the scaler applying the chart's ScaledObjects) and through `pickspin simulate`'s
engine with the same values file, compared on p50 latency, replica-seconds, cold starts and
replicas over time.

The live run serves every service of the values file but the llama.cpp one (a real model on
this CPU, whose speed no values file describes); both runs read the values file `up` wrote
(emulated cold starts, local endpoints). Every profile's cooldown is cut to `--cooldown`
seconds in that file so that a 5-minute trace also shows scale-to-zero.

    python benchmarks/sim_vs_live.py --minutes 5 --seed 11
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import yaml

from pickspin.core.settings import DEFAULT_VALUES, Settings
from pickspin.core.warmpool import time_of_day
from pickspin.local.stack import Stack, down, up
from pickspin.sim.command import DEFAULT_CACHE
from pickspin.sim.engine import simulate
from pickspin.sim.prompts import load_rows
from pickspin.sim.runs import LOCAL, Config, Environment
from pickspin.sim.summary import figures
from pickspin.sim.trace import Trace, TraceSpec, generate, parse_points, write_trace

REAL_MODEL = "gemma-3-270m-llamacpp"
TOLERANCE = 0.10


def scaler_url(stack: Stack) -> str:
    return next(str(p.url) for p in stack.procs if p.name == "scaler")


def drive(endpoint: str, trace: Trace, texts: dict[str, str], tokens: int,
          start: float) -> list[dict[str, object]]:
    """Send each request at its time (streamed), recording TTFT, latency and headers."""
    out: list[dict[str, object]] = [{} for _ in range(len(trace))]
    client = httpx.Client(timeout=300.0, limits=httpx.Limits(max_connections=512))

    def one(i: int) -> None:
        delay = start + float(trace.times[i]) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent = time.monotonic()
        body = {"model": "pickspin/auto", "stream": True, "max_tokens": tokens,
                "messages": [{"role": "user", "content": texts[trace.prompts[i]]}]}
        ttft = None
        try:
            with client.stream("POST", f"{endpoint}/chat/completions", json=body) as r:
                for line in r.iter_lines():
                    if ttft is None and line.startswith("data:"):
                        ttft = time.monotonic() - sent
                out[i] = {"status": r.status_code, "ttft": ttft,
                          "latency": time.monotonic() - sent,
                          "service": r.headers.get("x-pickspin-service"),
                          "cold": r.headers.get("x-pickspin-cold-start") == "true",
                          "action": r.headers.get("x-pickspin-cold-action"),
                          "late": sent - start - float(trace.times[i])}
        except httpx.HTTPError as exc:
            out[i] = {"status": 0, "error": str(exc)}

    with ThreadPoolExecutor(max_workers=256) as pool:
        list(pool.map(one, range(len(trace))))
    client.close()
    return out


def watch(url: str, start: float, stop: threading.Event, every: float
          ) -> list[tuple[float, dict[str, int], dict[str, int]]]:
    """The scaler's replicas and ready replicas per service, every `every` seconds."""
    seen = []
    with httpx.Client(timeout=2.0) as http:
        while not stop.is_set():
            try:
                data = http.get(f"{url}/replicas").json()
                seen.append((time.monotonic() - start,
                             {n: int(d["replicas"]) for n, d in data.items()},
                             {n: int(d["ready"]) for n, d in data.items()}))
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            stop.wait(every)
    return seen


def integrate(times: np.ndarray, counts: np.ndarray, until: float) -> float:
    """∫ counts dt over [0, until] for a step function sampled at `times`."""
    t = np.append(times, until)
    return float(np.sum(counts * np.clip(np.diff(t), 0, None)))


def activations(counts: np.ndarray) -> int:
    """0 → ≥ 1 transitions of one service's replicas."""
    return int(np.sum((counts[1:] > 0) & (counts[:-1] == 0)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--rate", default="0:0.4,40:2,110:2,120:0,230:0,231:1.2,300:1.2",
                   help="arrival rate points over the trace (seconds:req/s); the default has "
                        "a 110 s pause, longer than the cooldown, so services go to zero "
                        "and start again")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--cooldown", type=int, default=45)
    p.add_argument("--out", type=Path, default=Path("reports") / "sim-vs-live")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    values = yaml.safe_load(DEFAULT_VALUES.read_text())
    for prof in values["global"]["pickspin"]["profiles"].values():
        prof["scaling"]["cooldownSeconds"] = a.cooldown
    settings = Settings.from_mapping(values)
    rows = {r.key: r for r in load_rows(settings, DEFAULT_CACHE)}
    seconds = a.minutes * 60
    points = parse_points(a.rate)
    grid = np.linspace(0, seconds, 10_001)
    rate = np.interp(grid, [x for x, _ in points], [y for _, y in points])
    expected = round(float(rate.mean()) * seconds)  # the rate as given, not rescaled
    trace = generate(TraceSpec("points", expected, seconds, a.seed, points=a.rate), sorted(rows))
    write_trace(trace, a.out / "trace.csv")
    services = [s.name for s in settings.services if s.name != REAL_MODEL]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pickspin-simlive-") as tmp:
        cfg = Path(tmp) / "values.yaml"
        cfg.write_text(yaml.safe_dump(values, sort_keys=False))
        stack = up(str(cfg), Path(tmp) / "state", services=services, tick_seconds=5.0)
        try:
            time.sleep(3)  # a first telemetry tick after the warm pools came up
            stop = threading.Event()
            start = time.monotonic()
            started_at = time.time()  # the scheduled warm pools read the time of day
            seen: list = []
            watcher = threading.Thread(target=lambda: seen.extend(
                watch(scaler_url(stack), start, stop, 0.5)))
            watcher.start()
            live = drive(stack.endpoint, trace, {k: r.text for k, r in rows.items()},
                         a.tokens, start)
            horizon = time.monotonic() - start
            stop.set()
            watcher.join()
            run_settings = Settings.load(stack.config)  # what the live run ran with
        finally:
            down(Path(tmp) / "state")
    load_after = os.getloadavg()

    profile = run_settings.default_profile
    env = Environment(**{**LOCAL.__dict__, "tokens": a.tokens, "sample_seconds": 0.5,
                         "start_of_day": time_of_day(run_settings, profile, started_at)})
    t0 = time.perf_counter()
    sim = simulate(run_settings, Config(f"pickspin/{profile}", profile), trace, rows, env,
                   seed=a.seed)
    sim_seconds = time.perf_counter() - t0
    names = sim.services
    sim_horizon = max(horizon, sim.horizon)
    live_t = np.array([s[0] for s in seen])
    live_r = np.array([[s[1].get(n, 0) for n in names] for s in seen])
    sim_rs = integrate(sim.samples, sim.replicas.sum(axis=1), sim_horizon)
    live_rs = integrate(live_t, live_r.sum(axis=1), sim_horizon)
    ok = [r for r in live if r.get("status") == 200]
    live_lat = np.array([float(r["latency"]) for r in ok])
    live_ttft = np.array([float(r["ttft"]) for r in ok if r.get("ttft") is not None])
    f = figures(sim, run_settings, 2.0)
    compare = {
        "p50 latency s": (float(np.median(live_lat)), f.latency_p50),
        "p99 latency s": (float(np.percentile(live_lat, 99)), f.latency_p99),
        "p50 TTFT s": (float(np.median(live_ttft)), f.ttft_p50),
        "p99 TTFT s": (float(np.percentile(live_ttft, 99)), f.ttft_p99),
        "replica-seconds": (live_rs, sim_rs),
        "cold starts (activations)": (
            sum(activations(live_r[:, j]) for j in range(len(names))),
            sum(activations(sim.replicas[:, j]) for j in range(len(names)))),
        "requests answered": (len(ok), int((sim.outcome.service >= 0).sum())),
    }
    within = {k: abs(s - lv) / lv <= TOLERANCE for k, (lv, s) in compare.items()
              if k in ("p50 latency s", "replica-seconds")}
    live_share = {n: sum(1 for r in ok if r["service"] == n) for n in names}
    sim_share = {n: int((sim.outcome.service == j).sum()) for j, n in enumerate(names)}
    report = {"trace": {"requests": len(trace), "seconds": seconds, "rate": a.rate,
                        "seed": a.seed, "tokens": a.tokens, "cooldown": a.cooldown},
              "load_average_before_after": [load_before, load_after],
              "late_sends_p99_s": float(np.percentile([r.get("late", 0) for r in ok], 99)),
              "compare_live_sim": compare, "within_10pct": within,
              "requests_per_service": {"live": live_share, "sim": sim_share},
              "sim_seconds": sim_seconds,
              "timeline": {"live_t": live_t.tolist(), "live_replicas": live_r.sum(axis=1).tolist(),
                           "sim_t": sim.samples.tolist(),
                           "sim_replicas": sim.replicas.sum(axis=1).tolist()}}
    (a.out / "sim-vs-live.json").write_text(json.dumps(report, indent=1))
    _plot(a.out, live_t, live_r, sim, names)
    lines = ["| figure | live (`pickspin up`) | simulated | difference |", "|---|---|---|---|"]
    for k, (lv, s) in compare.items():
        lines.append(f"| {k} | {lv:.3f} | {s:.3f} | {100 * (s - lv) / lv:+.1f} % |"
                     if lv else f"| {k} | {lv} | {s} | |")
    lines += ["", "| service | live requests | simulated requests |", "|---|---|---|"]
    lines += [f"| {n} | {live_share[n]} | {sim_share[n]} |" for n in names
              if live_share[n] or sim_share[n]]
    md = "\n".join([f"# Simulator against the live local run ({len(trace)} requests, "
                    f"{a.minutes:g} min, rate {a.rate})", "",
                    f"Load average before / after: {load_before} / {load_after}", "",
                    *lines, "", f"Within ±10 %: {within}", "",
                    "![replicas](sim-vs-live.png)"])
    (a.out / "sim-vs-live.md").write_text(md + "\n")
    print(md)
    return 0


def _plot(out: Path, live_t: np.ndarray, live_r: np.ndarray, sim, names) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for j, name in enumerate(names):
        if not (live_r[:, j].any() or sim.replicas[:, j].any()):
            continue
        line = ax.step(live_t, live_r[:, j] + 0.03 * j, where="post", label=f"{name} live")
        ax.step(sim.samples, sim.replicas[:, j] - 0.03 * j, where="post", linestyle="--",
                color=line[0].get_color(), label=f"{name} simulated")
    ax.set_xlabel("seconds")
    ax.set_ylabel("replicas (lines offset slightly)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "sim-vs-live.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
