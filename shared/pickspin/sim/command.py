"""`pickspin simulate`: a request trace through Pick and Spin, every profile against the
baselines, in simulated time.

    pickspin simulate --trace diurnal --requests 100000 --hours 24
    pickspin simulate --trace bursty --seed 3 --profiles balanced --no-baselines
    pickspin simulate --trace points --rate 0:0,300:4,900:4,1200:0 --hours 0.5
    pickspin simulate --trace my-trace.csv          # CSV: timestamp,prompt_id
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pickspin.core.errors import ConfigError
from pickspin.core.settings import Settings
from pickspin.sim.engine import simulate
from pickspin.sim.prompts import PromptRow, load_rows
from pickspin.sim.runs import CLUSTER, LOCAL, Config, Environment, Result
from pickspin.sim.trace import SHAPES, Trace, TraceSpec, generate, read_trace, write_trace

DEFAULT_CACHE = Path(".pickspin") / "sim-prompts.json"


def bar(done: float, label: str, width: int = 30) -> None:
    filled = int(width * min(max(done, 0.0), 1.0))
    print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {100 * done:5.1f} %",
          end="", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pickspin simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", default="diurnal",
                   help=f"a generated shape ({', '.join(SHAPES)}) or a CSV file "
                        "(timestamp,prompt_id)")
    p.add_argument("--requests", type=int, default=100_000, help="expected arrivals")
    p.add_argument("--hours", type=float, default=24.0, help="trace length")
    p.add_argument("--seed", type=int, default=7, help="trace seed (and the run's draws)")
    p.add_argument("--rate", default="", help="points shape: 't:rps,t:rps,…'")
    p.add_argument("--floor", type=float, default=TraceSpec.floor,
                   help="diurnal/bursty: night rate as a share of the peak")
    p.add_argument("--burst-factor", type=float, default=TraceSpec.burst_factor)
    p.add_argument("--bursts-per-hour", type=float, default=TraceSpec.bursts_per_hour)
    p.add_argument("--write-trace", type=Path, help="also write the trace as CSV")
    p.add_argument("--profiles", help="comma-separated profiles (default: all)")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--slo-ttft", type=float, default=2.0, help="TTFT bound of the SLO (s)")
    p.add_argument("--slo-target", type=float, default=0.99,
                   help="attainment the static baselines are sized for")
    p.add_argument("--env", choices=("cluster", "local"), default="cluster",
                   help="cluster: KEDA's 15 s polls, 2 m rate window, configured cold "
                        "starts; local: `pickspin up`'s 1 s polls and emulated cold starts "
                        "(give --config the run's values file)")
    p.add_argument("--tokens", type=int, default=128, help="output tokens per request")
    p.add_argument("--jobs", type=int, default=2, help="configurations run in parallel")
    p.add_argument("--config", help="values file (default: $PICKSPIN_CONFIG or the chart's)")
    p.add_argument("--data", type=Path, help="benchmark folder (default ../shared/data/...)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help="classified held-out prompts (made on first use)")
    p.add_argument("--out", type=Path, default=Path("reports") / "simulate")
    return p


def make_trace(a: argparse.Namespace, keys: list[str]) -> tuple[Trace, dict[str, Any]]:
    if a.trace not in SHAPES:
        trace = read_trace(Path(a.trace), set(keys))
        return trace, {"shape": f"file {a.trace}"}
    spec = TraceSpec(a.trace, a.requests, a.hours * 3600, a.seed, floor=a.floor,
                     burst_factor=a.burst_factor, bursts_per_hour=a.bursts_per_hour,
                     points=a.rate)
    described = {"shape": spec.shape, "seed": spec.seed, "expected requests": spec.requests}
    if spec.shape in ("diurnal", "bursty"):
        described["night floor"] = spec.floor
    if spec.shape == "bursty":
        described |= {"bursts/h": spec.bursts_per_hour, "burst ×": spec.burst_factor}
    if spec.shape == "points":
        described["rate"] = spec.points
    return generate(spec, keys), described


def as_local(settings: Settings) -> Settings:
    """The settings `pickspin up` runs with: every service emulated, with the emulated cold
    start (a values file written by `pickspin up` already is)."""
    from pickspin.local.plan import local_settings

    return local_settings(settings, {s.name: s.endpoint for s in settings.services})


# workers inherit these through fork (the rows are large; pickling them per task is slow)
_SHARED: dict[str, Any] = {}


def _run_one(config: Config) -> Result:
    s = _SHARED
    return simulate(s["settings"], config, s["trace"], s["rows"], s["env"], s["seed"])


def _shifted(k: int, n: int, label: str) -> Callable[[float], None]:
    """Progress of the k-th of n runs as progress of all of them."""
    return lambda f: bar((k + f) / n, label)


def run_all(settings: Settings, configs: Sequence[Config], trace: Trace,
            rows: dict[str, PromptRow], env: Environment, seed: int, jobs: int
            ) -> list[Result]:
    """Every configuration, in parallel over `jobs` processes, with a progress bar."""
    _SHARED.update(settings=settings, trace=trace, rows=rows, env=env, seed=seed)
    label = f"{len(configs)} configurations × {len(trace)} requests"
    if jobs <= 1 or len(configs) == 1:
        results = []
        for k, c in enumerate(configs):
            results.append(simulate(settings, c, trace, rows, env, seed,
                                    _shifted(k, len(configs), label)))
        bar(1.0, label)
        print(file=sys.stderr)
        return results
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        done: dict[str, Result] = {}
        bar(0.0, label)
        for r in pool.imap_unordered(_run_one, configs):
            done[r.config.name] = r
            bar(len(done) / len(configs), label)
    print(file=sys.stderr)
    return [done[c.name] for c in configs]


def main(argv: list[str]) -> int:
    from pickspin.sim.configs import configurations

    a = parser().parse_args(argv)
    try:
        settings = Settings.load(a.config)
        if a.env == "local":
            settings = as_local(settings)
        env = CLUSTER if a.env == "cluster" else LOCAL
        env = Environment(**{**env.__dict__, "tokens": a.tokens,
                             "sample_seconds": max(env.sample_seconds, a.hours * 3600 / 1500)})
        rows = {r.key: r for r in load_rows(settings, a.cache, a.data)}
        trace, described = make_trace(a, sorted(rows))
        if a.write_trace:
            write_trace(trace, a.write_trace)
        profiles = [p for p in (a.profiles or "").split(",") if p] or None
        unknown = [p for p in profiles or [] if p not in settings.profiles]
        if unknown:
            raise ValueError(f"unknown profiles {unknown} (have {sorted(settings.profiles)})")
        configs, sizing = configurations(settings, trace, rows, env, a.slo_target, profiles,
                                         not a.no_baselines)
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"pickspin simulate: {exc}", file=sys.stderr)
        return 2
    report(settings, configs, sizing, trace, rows, env, described, a.seed, a.jobs,
           a.slo_ttft, a.out)
    return 0


def report(settings: Settings, configs: Sequence[Config], sizing: dict[str, Any],
           trace: Trace, rows: dict[str, PromptRow], env: Environment,
           described: dict[str, Any], seed: int, jobs: int, slo_ttft: float, out: Path
           ) -> list[Any]:
    """Run every configuration, write the report, print the headline; the figures back."""
    from pickspin.sim.report import write_report
    from pickspin.sim.summary import figures, targets

    start = time.perf_counter()
    results = run_all(settings, configs, trace, rows, env, seed, jobs)
    seconds = time.perf_counter() - start
    rows_out = [figures(r, settings, slo_ttft) for r in results]
    checks = targets({f.name: f for f in rows_out}, settings.default_profile)
    path = write_report(out, settings, trace, described, env, results, rows_out, checks,
                        sizing, slo_ttft, seconds)
    for f in rows_out:
        print(f"{f.name:26s} accuracy {100 * f.accuracy:5.1f} %  ${f.cost_per_query:.5f}/query"
              f"  TTFT p50 {f.ttft_p50:.2f} s p99 {f.ttft_p99:.2f} s  SLO "
              f"{100 * f.slo_attainment:.2f} %  cold starts {f.cold_starts}")
    for c in checks:
        print(f"{'met ' if c.met else 'MISS'}  {c.target}: {c.measured}")
    print(f"simulated {len(configs)} configurations × {len(trace)} requests in "
          f"{seconds:.1f} s; report: {path}")
    return rows_out
