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

With `--litellm`, a LiteLLM proxy (one worker) is started in front of the same emulated
backends and each round also asks through it for the service the gateway chose: its
overhead and the ratio of the two are printed from the same run, under the same load.

    python benchmarks/gateway_overhead.py --requests 500 --concurrency 1 32
    pip install -e ".[bench]"   # once, for --litellm
    python benchmarks/gateway_overhead.py --requests 300 --concurrency 1 16 --litellm

With `--floor`, the floor chain of `hop_floor.py` (echo CloudEvent functions for the
classifier, selector and telemetry and an echo http function for the gateway, all served by
func-python as the real ones are, making the same calls over the same aiohttp client) is
asked in each round too: the overhead of the same hops with no pickspin code in them,
under the same load and the same idle gaps, and its CPU per request.

    python benchmarks/gateway_overhead.py --requests 300 --concurrency 1 16 --floor
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

from pickspin.core.settings import Settings
from pickspin.core.telemetry import quantile as nearest_rank
from pickspin.local.processes import Proc, free_port, spawn, stop, wait_http
from pickspin.local.stack import down, up

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hop_floor import start_floor  # a sibling script, not a package

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
FUNCTIONS = ("gateway", "classifier", "selector", "telemetry")
# the local proxy's admin key (LiteLLM refuses to start without one)
LITELLM_KEY = "sk-" + os.urandom(16).hex()
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
        if proc.kind == "floor":  # the floor chain's processes, each apart
            group = proc.name
        groups[group] = groups.get(group, 0.0) + cpu_seconds(proc.pid)
    return groups


def quantile(values: list[float], q: float) -> float:
    """The same nearest-rank quantile telemetry reports."""
    return nearest_rank(sorted(values), q)


def run(endpoint: str, endpoints: dict[str, str], n: int, concurrency: int,
        router: str = "keyword", litellm: str | None = None, floor: str | None = None) -> dict:
    """`n` rounds over `concurrency` threads; each round asks through the gateway, then
    straight to the backend it chose, then (with `litellm`) through LiteLLM and (with
    `floor`) through the floor chain to that backend."""
    rounds: list[tuple[float, float, float | None, float | None]] = []
    decisions: list[float] = []  # x-pickspin-decision-ms: the classifier and selector calls
    lock = threading.Lock()
    http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency * 3 + 4))
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
            other = None
            if litellm is not None:  # LiteLLM knows each service as a model of that name
                other, _ = ttft(http, litellm + "/v1/chat/completions",
                                {**body, "model": service},
                                {"authorization": f"Bearer {LITELLM_KEY}"})
            bare = None
            if floor is not None:  # the same hops with no pickspin code in them
                bare, _ = ttft(http, floor + "/v1/chat/completions",
                               {**body, "model": headers["x-pickspin-model"]},
                               {"x-floor-backend": endpoints[service]})
            with lock:
                rounds.append((via, direct, other, bare))
                decisions.append(float(headers["x-pickspin-decision-ms"]))

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()  # a failed request fails the benchmark, loudly
    http.close()
    via = [r[0] * 1000 for r in rounds]
    direct = [r[1] * 1000 for r in rounds]
    result = {
        "concurrency": concurrency, "requests": len(rounds),
        "gateway_ttft_ms": {"p50": quantile(via, 0.5), "p99": quantile(via, 0.99)},
        "direct_ttft_ms": {"p50": quantile(direct, 0.5), "p99": quantile(direct, 0.99)},
        "decision_ms": {"p50": quantile(decisions, 0.5), "p99": quantile(decisions, 0.99)},
        "overhead_ms": overhead(via, direct),
    }
    if litellm is not None:
        other = [(r[2] or 0.0) * 1000 for r in rounds]
        result["litellm_ttft_ms"] = {"p50": quantile(other, 0.5), "p99": quantile(other, 0.99)}
        result["litellm_overhead_ms"] = theirs = overhead(other, direct)
        ours = result["overhead_ms"]
        result["overhead_ratio"] = {  # pickspin's overhead / LiteLLM's: below 1 is lighter
            k: ours[k] / theirs[k] if theirs[k] > 0 else None for k in ("p50", "p99")}
    if floor is not None:
        bare = [(r[3] or 0.0) * 1000 for r in rounds]
        result["floor_ttft_ms"] = {"p50": quantile(bare, 0.5), "p99": quantile(bare, 0.99)}
        result["floor_overhead_ms"] = overhead(bare, direct)
    return result


def overhead(via: list[float], direct: list[float]) -> dict[str, float]:
    """TTFT added by a hop: its quantiles minus the direct ones, and the median of pairs."""
    return {"p50": quantile(via, 0.5) - quantile(direct, 0.5),
            "p99": quantile(via, 0.99) - quantile(direct, 0.99),
            "paired_median": statistics.median(v - d for v, d in zip(via, direct, strict=True))}


def report(r: dict) -> None:
    o, g, d = r["overhead_ms"], r["gateway_ttft_ms"], r["direct_ttft_ms"]
    cpu = r["cpu_ms_per_request"]
    functions = sum(cpu.get(f, 0.0) for f in FUNCTIONS)
    print(f"concurrency {r['concurrency']:>3}: {r['requests']} pairs | TTFT gateway p50 "
          f"{g['p50']:.1f} p99 {g['p99']:.1f} ms | direct p50 {d['p50']:.1f} p99 "
          f"{d['p99']:.1f} ms | overhead p50 {o['p50']:.1f} p99 {o['p99']:.1f} ms "
          f"(paired median {o['paired_median']:.1f}; of it Pick's two calls p50 "
          f"{r['decision_ms']['p50']:.1f} ms)", flush=True)
    if "litellm_overhead_ms" in r:
        lo, lt, ratio = r["litellm_overhead_ms"], r["litellm_ttft_ms"], r["overhead_ratio"]
        shown = {k: "n/a" if v is None else f"{v:.2f}" for k, v in ratio.items()}
        print(f"    LiteLLM proxy: TTFT p50 {lt['p50']:.1f} p99 {lt['p99']:.1f} ms | overhead "
              f"p50 {lo['p50']:.1f} p99 {lo['p99']:.1f} ms (paired median "
              f"{lo['paired_median']:.1f}) | pickspin/LiteLLM overhead ratio p50 "
              f"{shown['p50']} p99 {shown['p99']}", flush=True)
    if "floor_overhead_ms" in r:
        fo = r["floor_overhead_ms"]
        floor = {k.removeprefix("floor-"): v for k, v in cpu.items() if k.startswith("floor-")}
        print(f"    floor chain (the same hops, no pickspin code): overhead p50 {fo['p50']:.1f} "
              f"p99 {fo['p99']:.1f} ms (paired median {fo['paired_median']:.1f}) | CPU "
              f"{sum(floor.values()):.2f} ms per request ("
              + ", ".join(f"{f} {floor.get(f, 0.0):.2f}" for f in FUNCTIONS) + ")", flush=True)
    print(f"    CPU per request: functions {functions:.2f} ms ("
          + ", ".join(f"{f} {cpu.get(f, 0.0):.2f}" for f in FUNCTIONS)
          + f"); all processes {sum(cpu.values()):.2f} ms ("
          + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()
                      if k not in FUNCTIONS and not k.startswith("floor-"))
          + "; backends also answered the direct half of each pair)", flush=True)


def litellm_config(path: Path, endpoints: dict[str, str], models: dict[str, str]) -> Path:
    """LiteLLM's proxy config: each service as a model of its own name, at the same
    emulated backend (an OpenAI-compatible server)."""
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": name, "litellm_params": {
            "model": f"openai/{models[name]}", "api_base": f"{url}/v1", "api_key": "none"}}
            for name, url in endpoints.items()],
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }))
    return path


def start_litellm(binary: str, config: Path, logs: Path) -> tuple[Proc, str]:
    """`litellm --config` on a free port, one worker (as the issue measured it)."""
    port = free_port()
    env = {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
           "DISABLE_SCHEMA_UPDATE": "True", "LITELLM_MASTER_KEY": LITELLM_KEY,
           # offline: its bundled cost map, and no tokenizer download per request (each
           # would wait out ~25 s of retries for a hub it cannot reach)
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = spawn("litellm", "litellm", [binary, "--config", str(config), "--host",
                                        "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                 env=env, cwd=None, log_dir=logs, port=port, health="/health/liveliness")
    url = f"http://127.0.0.1:{port}"
    if not wait_http(url + "/health/liveliness", 120, alive=proc):
        stop(proc)
        raise RuntimeError(f"LiteLLM did not start: {Path(proc.log).read_text()[-2000:]}")
    return proc, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--ttft-ms", type=float, default=50.0, help="constant backend TTFT")
    parser.add_argument("--router", default="keyword",
                        help="x-pickspin-router of the gateway requests (keyword: the "
                             "gateway's own cost, without the encoder's inference)")
    parser.add_argument("--litellm", nargs="?", const="litellm", metavar="BINARY",
                        help="also measure a LiteLLM proxy (the `litellm` command of "
                             "`pip install '.[bench]'`, or the path given) in front of the "
                             "same backends in the same run, and print the ratio")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floor chain (hop_floor.py's echo functions, "
                             "served the same way, wired like the gateway's path) in front of "
                             "the same backends in the same run")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "gateway_overhead.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pickspin-bench-") as tmp:
        config = constant_ttft_config(Path(tmp) / "values.yaml", args.ttft_ms)
        # every backend warm for the whole run: this measures Pick's path, not Spin's
        stack = up(str(config), Path(tmp) / "state", tick_seconds=5.0, scale=False, log=False)
        litellm: Proc | None = None
        floor: list[Proc] = []
        try:
            settings = Settings.load(stack.config)
            endpoints = {s.name: s.endpoint for s in settings.services}
            litellm_url = None
            if args.litellm:
                models = {s.name: s.model for s in settings.services}
                litellm, litellm_url = start_litellm(
                    args.litellm, litellm_config(Path(tmp) / "litellm.yaml", endpoints, models),
                    Path(tmp))
            floor_url = None
            if args.floor:
                floor, floor_url = start_floor(Path(tmp) / "floor", Path(tmp))
            warm = run(stack.endpoint, endpoints, 50, 4, args.router, litellm_url,
                       floor_url)  # caches
            print(f"warm-up: {warm['requests']} pairs", file=sys.stderr)
            results = []
            for c in args.concurrency:
                procs = (*stack.procs, *([litellm] if litellm else []), *floor)
                before = cpu_by_group(procs)
                r = run(stack.endpoint, endpoints, args.requests, c, args.router, litellm_url,
                        floor_url)
                after = cpu_by_group(procs)
                r["cpu_ms_per_request"] = {
                    group: round((after[group] - before.get(group, 0.0)) * 1000
                                 / r["requests"], 3) for group in after}
                results.append(r)
                report(r)
        finally:
            if litellm is not None:
                stop(litellm)
            for proc in floor:
                stop(proc)
            down(Path(tmp) / "state")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"ttft_ms": args.ttft_ms, "results": results}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
