"""CPU cost per event of the event functions (classifier, selector, telemetry).

Starts each function as a real process the way func runs it (its folder's `function`
package under a func-python middleware, `LISTEN_ADDRESS`), warms it up, then sends N
binary-mode CloudEvents one after another and reads the process's utime+stime from
/proc/<pid>/stat before and after: CPU milliseconds per event, client excluded.

    python benchmarks/event_function_cpu.py --events 500
    python benchmarks/event_function_cpu.py --middleware http   # the middleware override
    python benchmarks/event_function_cpu.py --router keyword    # the classifier's router

By default each function is served by the middleware its func.yaml's `invoke` names.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from pickspin.core.events import EventType, encode, make_event
from pickspin.local.processes import Proc, free_port, python, spawn, stop, wait_http

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "charts" / "pickspin" / "values.yaml"
TICK = os.sysconf("SC_CLK_TCK")


def event_for(function: str, router: str | None = None) -> tuple[EventType, dict[str, object]]:
    """The event each function serves most: what the request path costs."""
    if function == "classifier":
        route = {"router": router} if router else {}
        return EventType.PROMPT_RECEIVED, {"request_id": "b", "route": route, "prompt":
                                           "Prove that there are infinitely many primes"}
    if function == "selector":
        return EventType.PROMPT_CLASSIFIED, {
            "request_id": "b", "complexity": "medium", "router": "keyword", "elapsed_ms": 0.1,
            "probabilities": {"low": 0.2, "medium": 0.6, "high": 0.2}}
    return EventType.INFERENCE_COMPLETED, {
        "request_id": "b", "service": "gemma-3-27b-vllm", "model": "gemma-3-27b",
        "backend": "vllm", "outcome": "success", "ttft_seconds": 0.2, "latency_seconds": 1.0,
        "completion_tokens": 10, "finished_at": time.time()}


def invoke_of(function: str) -> str:
    return str(yaml.safe_load((REPO / "functions" / function / "func.yaml").read_text())
               ["invoke"])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def start(function: str, middleware: str, logs: Path) -> Proc:
    port = free_port()
    argv = [python(), "-c", f"from func_python.{middleware} import serve; import function; "
                            "serve(function.new)"]
    env = {"LISTEN_ADDRESS": f"127.0.0.1:{port}", "PICKSPIN_CONFIG": str(VALUES),
           "PICKSPIN_TELEMETRY_URL": "", "PICKSPIN_PROMETHEUS_URL": "", "K_SINK": ""}
    proc = spawn(function, "function", argv, env=env, cwd=REPO / "functions" / function,
                 log_dir=logs, port=port, health="/health/readiness")
    if not wait_http(f"{proc.url}/health/readiness", 60, alive=proc):
        stop(proc)
        raise RuntimeError(f"{function} did not start: {Path(proc.log).read_text()[-2000:]}")
    return proc


def measure(function: str, middleware: str, events: int, rounds: int, logs: Path,
            router: str | None = None) -> dict:
    type_, data = event_for(function, router)
    proc = start(function, middleware, logs)
    per_event = []
    try:
        with httpx.Client(timeout=10) as http:
            def send_one() -> None:
                message = encode(make_event(type_, data, "/benchmarks"))
                status = http.post(proc.url or "", content=message.body,
                                   headers=message.headers).status_code
                if status not in (200, 202):
                    raise RuntimeError(f"{function} answered {status}")

            for _ in range(100):  # warm-up: imports, first-call caches, connection
                send_one()
            for _ in range(rounds):
                before = cpu_seconds(proc.pid)
                for _ in range(events):
                    send_one()
                per_event.append((cpu_seconds(proc.pid) - before) / events * 1000)
    finally:
        stop(proc)
    return {"function": function, "middleware": middleware, "events": events,
            "rounds": [round(x, 3) for x in per_event],
            "cpu_ms_per_event": round(statistics.median(per_event), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--middleware", choices=["http", "cloudevent"],
                        help="override the middleware func.yaml's invoke selects")
    parser.add_argument("--functions", nargs="+", default=["classifier", "selector", "telemetry"])
    parser.add_argument("--router", help="the classifier's router (default: the configured one)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="pickspin-cpu-") as tmp:
        for function in args.functions:
            middleware = args.middleware or invoke_of(function)
            row = measure(function, middleware, args.events, args.rounds, Path(tmp), args.router)
            results.append(row)
            print(f"{function:<11} {middleware:<10} {row['cpu_ms_per_event']:.3f} ms CPU/event "
                  f"(rounds {row['rounds']})", flush=True)
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
