"""Gateway overhead: TTFT through the gateway minus TTFT straight to the same backend.

Starts the functions and the default matrix of emulated backends as real processes, with
every backend's TTFT made constant (median = p99) so that the difference measures the
gateway (validation, classifier and selector CloudEvents over HTTP, proxying) and not the
backends' random draws. Each client thread sends a request through the gateway, reads the
service it landed on from `x-pickspin-service`, then sends the same request straight to
that backend: both halves of a pair run under the same load.

CPU per request: utime+stime from /proc/<pid>/stat of every process the run started, read
before and after each concurrency level, divided by the gateway requests. The four
functions (the hop's own cost) are shown apart from the backends and the rest (supervisor,
Prometheus), which also served the direct halves of the pairs.

    python benchmarks/gateway_overhead.py --requests 500 --concurrency 1 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from pickspin.local.processes import Proc
from pickspin.local.stack import down, up
from pickspin.settings import Settings
from pickspin.telemetry import quantile as nearest_rank

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
FUNCTIONS = ("gateway", "classifier", "selector", "telemetry")
PROMPTS = ["Define the word entropy", "Prove that there are infinitely many primes",
           "Write a short poem about autumn", "List the planets of the solar system",
           "Explain why the sky is blue", "Summarise the plot of Hamlet"]


def constant_ttft_config(path: Path, ttft_ms: float) -> Path:
    settings = Settings.load(REPO / "charts/pickspin/values.yaml")
    services = tuple(  # the emulated matrix (the real llama.cpp server is not part of it)
        s.model_copy(update={"emulation": s.emulation.model_copy(update={
            "ttft_ms_median": ttft_ms, "ttft_ms_p99": ttft_ms, "cold_start_seconds": 0.0})})
        for s in settings.services if s.emulation and s.backend != "llamacpp")
    models = tuple(m for m in settings.models if any(s.model == m.name for s in services))
    fixed = settings.model_copy(update={"services": services, "models": models})
    path.write_text(yaml.safe_dump({"global": {"pickspin": fixed.dump()}}))
    return path


def ttft(http: httpx.Client, url: str, body: dict,
         headers: dict[str, str] | None = None) -> tuple[float, httpx.Headers]:
    start = time.perf_counter()
    with http.stream("POST", url, json=body, headers=headers) as reply:
        reply.raise_for_status()
        first = None
        for chunk in reply.iter_raw():
            if chunk and first is None:
                first = time.perf_counter() - start
        assert first is not None, f"{url} sent an empty stream"
        return first, reply.headers


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_by_group(procs: Sequence[Proc]) -> dict[str, float]:
    """CPU seconds so far: each function's, then the rest summed by process kind."""
    groups: dict[str, float] = {}
    for proc in procs:
        # a function's replicas (gateway, gateway-2, ...) count as the function
        group = next((f for f in FUNCTIONS if proc.name.split("-")[0] == f), proc.kind)
        groups[group] = groups.get(group, 0.0) + cpu_seconds(proc.pid)
    return groups


def quantile(values: list[float], q: float) -> float:
    """The same nearest-rank quantile telemetry reports."""
    return nearest_rank(sorted(values), q)


def run(endpoint: str, endpoints: dict[str, str], n: int, concurrency: int,
        router: str = "keyword") -> dict:
    pairs: list[tuple[float, float]] = []
    lock = threading.Lock()
    http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency * 2 + 4))
    counter = iter(range(n))

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body = {"model": "pickspin/auto", "stream": True, "max_tokens": 2,
                    "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
            via, headers = ttft(http, endpoint + "/chat/completions", body,
                                {"x-pickspin-router": router})
            service = headers["x-pickspin-service"]
            direct, _ = ttft(http, endpoints[service] + "/v1/chat/completions",
                             {**body, "model": headers["x-pickspin-model"]})
            with lock:
                pairs.append((via, direct))

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()  # a failed request fails the benchmark, loudly
    http.close()
    via = [p[0] * 1000 for p in pairs]
    direct = [p[1] * 1000 for p in pairs]
    paired = [v - d for v, d in zip(via, direct, strict=True)]
    return {
        "concurrency": concurrency, "requests": len(pairs),
        "gateway_ttft_ms": {"p50": quantile(via, 0.5), "p99": quantile(via, 0.99)},
        "direct_ttft_ms": {"p50": quantile(direct, 0.5), "p99": quantile(direct, 0.99)},
        "overhead_ms": {"p50": quantile(via, 0.5) - quantile(direct, 0.5),
                        "p99": quantile(via, 0.99) - quantile(direct, 0.99),
                        "paired_median": statistics.median(paired)},
    }


def report(r: dict) -> None:
    o, g, d = r["overhead_ms"], r["gateway_ttft_ms"], r["direct_ttft_ms"]
    cpu = r["cpu_ms_per_request"]
    functions = sum(cpu.get(f, 0.0) for f in FUNCTIONS)
    print(f"concurrency {r['concurrency']:>3}: {r['requests']} pairs | TTFT gateway p50 "
          f"{g['p50']:.1f} p99 {g['p99']:.1f} ms | direct p50 {d['p50']:.1f} p99 "
          f"{d['p99']:.1f} ms | overhead p50 {o['p50']:.1f} p99 {o['p99']:.1f} ms "
          f"(paired median {o['paired_median']:.1f})", flush=True)
    print(f"    CPU per request: functions {functions:.2f} ms ("
          + ", ".join(f"{f} {cpu.get(f, 0.0):.2f}" for f in FUNCTIONS)
          + f"); all processes {sum(cpu.values()):.2f} ms ("
          + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k not in FUNCTIONS)
          + "; backends also answered the direct half of each pair)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--ttft-ms", type=float, default=50.0, help="constant backend TTFT")
    parser.add_argument("--router", default="keyword",
                        help="x-pickspin-router of the gateway requests (keyword: the "
                             "gateway's own cost, without the encoder's inference)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "gateway_overhead.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pickspin-bench-") as tmp:
        config = constant_ttft_config(Path(tmp) / "values.yaml", args.ttft_ms)
        # every backend warm for the whole run: this measures Pick's path, not Spin's
        stack = up(str(config), Path(tmp) / "state", tick_seconds=5.0, scale=False, log=False)
        try:
            settings = Settings.load(stack.config)
            endpoints = {s.name: s.endpoint for s in settings.services}
            warm = run(stack.endpoint, endpoints, 50, 4, args.router)  # connections, caches
            print(f"warm-up: {warm['requests']} pairs", file=sys.stderr)
            results = []
            for c in args.concurrency:
                procs = stack.procs
                before = cpu_by_group(procs)
                r = run(stack.endpoint, endpoints, args.requests, c, args.router)
                after = cpu_by_group(procs)
                r["cpu_ms_per_request"] = {
                    group: round((after[group] - before.get(group, 0.0)) * 1000
                                 / r["requests"], 3) for group in after}
                results.append(r)
                report(r)
        finally:
            down(Path(tmp) / "state")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"ttft_ms": args.ttft_ms, "results": results}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
