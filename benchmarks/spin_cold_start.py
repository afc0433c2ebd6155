"""Spin figures on this machine: cold start to first token for the real llama.cpp backend,
and recovery time after a backend process is killed, as medians over several runs.

Starts `pickspin up` with Gemma 3 270M on llama.cpp (at zero replicas, short cooldown) and
an emulated Llama-3 70B warm pool on two backends (vLLM and TGI). Each cold-start run waits
until the scaler has taken the llama.cpp service to zero, then streams one request with the
`hold` profile and reads the first token; each recovery run kills the vLLM replica with
SIGKILL while requests for Llama-3 70B flow (the gateway fails over to TGI) and times until
the service answers again through its stable endpoint.

    python benchmarks/spin_cold_start.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml
from openai import OpenAI

from pickspin.local import llamacpp
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up

REPO = Path(__file__).resolve().parents[1]
REAL, WARM, SPARE = "gemma-3-270m-llamacpp", "llama-3-70b-vllm", "llama-3-70b-tgi"


def scaler(stack: Stack) -> dict:
    url = next(p.url for p in stack.procs if p.name == "scaler")
    return httpx.get(f"{url}/replicas", timeout=5).json()


def wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def cold_start_run(stack: Stack, client: OpenAI) -> dict:
    if not wait(lambda: scaler(stack)[REAL]["replicas"] == 0, 90):
        raise RuntimeError(f"{REAL} did not scale to zero")
    time.sleep(1.0)  # let a telemetry tick tell the selector
    start = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="gemma-3-270m", max_tokens=8, stream=True,
        extra_headers={"x-pickspin-profile": "quality"},
        messages=[{"role": "user", "content": "Name a colour."}])
    first = None
    for chunk in raw.parse():
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - start
    if raw.headers["x-pickspin-cold-start"] != "true" or first is None:
        raise RuntimeError(f"not a cold start: {dict(raw.headers)}")
    return {"first_token_s": first, "held_s": float(raw.headers["x-pickspin-cold-start-ms"]) / 1000}


def recovery_run(stack: Stack, client: OpenAI) -> dict:
    endpoint = yaml.safe_load(stack.config.read_text())["global"]["pickspin"]["services"]
    url = next(f"{s['endpoint']}/health" for s in endpoint
               if f"{s['model']}-{s['backend']}" == WARM)
    errors, answered, stop = [], [0], threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                client.chat.completions.create(model="llama-3-70b", max_tokens=4,
                                               messages=[{"role": "user", "content": "hi"}])
                answered[0] += 1
            except Exception as exc:  # a caller-visible failure
                errors.append(repr(exc))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(scaler(stack)[WARM]["pids"][0], signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(0.05)

    def healthy() -> bool:
        try:
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    ok = wait(healthy, 60)
    recovery = time.monotonic() - killed
    stop.set()
    for t in threads:
        t.join(timeout=30)
    if not ok:
        raise RuntimeError(f"{WARM} did not recover")
    return {"recovery_s": recovery, "answered": answered[0], "errors": len(errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "spin_cold_start.json")
    args = parser.parse_args(argv)
    if (missing := llamacpp.available()) is not None:
        print(missing, file=sys.stderr)
        return 2
    data = quick_spin_values(yaml.safe_load((REPO / "charts/pickspin/values.yaml").read_text()),
                             (REAL, WARM, SPARE), cooldown_seconds=2, warm_pool={"medium": 1},
                             target_utilization=1.0)
    data["global"]["pickspin"]["profiles"]["quality"]["scaling"]["coldStart"] = "hold"
    with tempfile.TemporaryDirectory(prefix="pickspin-spin-") as tmp:
        values = Path(tmp) / "values.yaml"
        values.write_text(yaml.safe_dump(data))
        stack = up(str(values), Path(tmp) / "run", tick_seconds=0.5, log=False)
        client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=120)
        try:
            cold = [cold_start_run(stack, client) for _ in range(args.runs)]
            for i, c in enumerate(cold, 1):
                print(f"cold start {i}: first token {c['first_token_s']:.2f} s "
                      f"(held {c['held_s']:.2f} s)", flush=True)
            recovered = [recovery_run(stack, client) for _ in range(args.runs)]
            for i, r in enumerate(recovered, 1):
                print(f"recovery {i}: {r['recovery_s']:.2f} s, {r['answered']} requests "
                      f"answered meanwhile, {r['errors']} errors", flush=True)
        finally:
            down(Path(tmp) / "run")
    summary = {
        "runs": args.runs,
        "cold_start_first_token_s_median": statistics.median(c["first_token_s"] for c in cold),
        "cold_start_held_s_median": statistics.median(c["held_s"] for c in cold),
        "recovery_s_median": statistics.median(r["recovery_s"] for r in recovered),
        "errors_during_recovery": sum(r["errors"] for r in recovered),
        "cold": cold, "recovery": recovered,
    }
    print(f"median cold start to first token {summary['cold_start_first_token_s_median']:.2f} s;"
          f" median recovery {summary['recovery_s_median']:.2f} s; "
          f"{summary['errors_during_recovery']} caller-visible errors")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
