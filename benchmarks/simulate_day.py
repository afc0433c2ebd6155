"""How long a day of traffic takes to simulate: the diurnal trace (100,000 requests expected
over 24 h) through pickspin under the default profile, one process, timed; with the load
average before and after (the machine is shared). The full report over every profile and
baseline is `pickspin simulate --trace diurnal` (it prints its own time).

    python benchmarks/simulate_day.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from pickspin.core.settings import Settings
from pickspin.sim.command import DEFAULT_CACHE
from pickspin.sim.engine import simulate
from pickspin.sim.prompts import load_rows
from pickspin.sim.runs import CLUSTER, Config
from pickspin.sim.trace import TraceSpec, generate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("reports") / "simulate-day.json")
    a = p.parse_args()
    settings = Settings.load()
    rows = {r.key: r for r in load_rows(settings, DEFAULT_CACHE)}
    trace = generate(TraceSpec("diurnal", a.requests, 86_400, a.seed), sorted(rows))
    profile = settings.default_profile
    times, loads = [], []
    for _ in range(a.runs):
        before = os.getloadavg()[0]
        start = time.perf_counter()
        cpu = time.process_time()
        simulate(settings, Config(f"pickspin/{profile}", profile), trace, rows, CLUSTER)
        times.append((time.perf_counter() - start, time.process_time() - cpu))
        loads.append((before, os.getloadavg()[0]))
        print(f"{len(trace)} requests in {times[-1][0]:.1f} s wall, {times[-1][1]:.1f} s CPU "
              f"(load average {loads[-1][0]:.1f} → {loads[-1][1]:.1f})", flush=True)
    wall = statistics.median(t for t, _ in times)
    result = {"requests": len(trace), "profile": profile, "runs": times,
              "median_wall_seconds": wall, "load_average": loads,
              "requests_per_second": len(trace) / wall, "target_met": wall < 60}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1))
    print(f"median {wall:.1f} s for a day of {len(trace)} requests "
          f"({'under' if wall < 60 else 'over'} the 60 s target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
