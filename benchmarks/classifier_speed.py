"""Classification speed of the default router, in process, on this machine.

For every held-out prompt of the benchmark folder (test split: rows with real outcomes and
proxy-labelled rows, a deterministic sample of `--prompts`), `router.timed(prompt)` is timed
one prompt at a time, as the classifier function calls it. Reports p50/p99 (nearest rank, the
telemetry function's rule) per router and thread count, and the cost of the token budget:
the same encoder at the model's budget, 64 and 128 tokens. The default router runs with
`routing.semanticThreads` threads, as the classifier function does. The machine's load
average is printed with the figures. Targets (issue 8): p50 ≤ 5 ms, p99 ≤ 15 ms on 2 cores.

    python benchmarks/classifier_speed.py [--prompts 600] [--out reports/speed]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pickspin.core.settings import Settings
from pickspin.core.telemetry import quantile
from pickspin.semantic.encoder import ENCODER_FILE, TOKENIZER_FILE, OnnxEncoder
from pickspin.semantic.heads import HeadWeights
from pickspin.semantic.registry import build_registry
from pickspin.semantic.runtime import resolve_model_dir
from pickspin.semantic.success import HEAD_FILE, SuccessConfig, SuccessRouter
from pickspin.training.data import default_data_dir, load_examples


def held_out_prompts(n: int) -> list[str]:
    data = default_data_dir()
    rows = [e for e in load_examples(data) if e.split == "test"]
    step = max(1, len(rows) // n)
    return [e.text for e in rows[::step]][:n]


def time_calls(router: Any, prompts: list[str]) -> list[float]:
    for p in prompts[:20]:
        router.timed(p)
    ms = []
    for p in prompts:
        start = time.perf_counter()
        router.timed(p)
        ms.append((time.perf_counter() - start) * 1000)
    return ms


def figures(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"p50_ms": round(quantile(s, 0.5), 3), "p99_ms": round(quantile(s, 0.99), 3),
            "mean_ms": round(sum(s) / len(s), 3), "n": len(s)}


def encoder_router(folder: Path, max_length: int, threads: int,
                   spinning: bool = False) -> SuccessRouter:
    cfg = SuccessConfig.read(folder / "config.json")
    encoder = OnnxEncoder.load(folder / ENCODER_FILE, folder / TOKENIZER_FILE, max_length,
                               threads, spinning)
    return SuccessRouter(encoder, HeadWeights.load(folder / HEAD_FILE),
                         SuccessConfig(max_length, cfg.rule, cfg.base_model, cfg.train))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=600)
    p.add_argument("--out", type=Path, default=Path("reports") / "speed")
    a = p.parse_args(argv)
    settings = Settings.load()
    prompts = held_out_prompts(a.prompts)
    folder = resolve_model_dir(settings.routing.semantic_model)
    results: dict[str, Any] = {"prompts": len(prompts), "model": str(folder.name), "runs": {}}
    registry = build_registry(settings)
    results["runs"]["keyword"] = figures(time_calls(registry.get("keyword"), prompts))
    default = settings.routing.mode.value
    threads_cfg = settings.routing.semantic_threads
    results["runs"][f"{default}-default-{threads_cfg}thr"] = figures(
        time_calls(registry.get(default), prompts))
    budget = SuccessConfig.read(folder / "config.json").max_length
    for threads in (1, 2):
        for length in sorted({budget, 64, 128}):
            router = encoder_router(folder, length, threads)
            key = f"semantic-{length}tok-{threads}thr"
            results["runs"][key] = figures(time_calls(router, prompts))
            print(key, results["runs"][key], file=sys.stderr, flush=True)
    # what serving's sleeping threads save: the same encoder with onnxruntime's default
    # spinning intra-op threads
    key = f"semantic-{budget}tok-2thr+spin"
    results["runs"][key] = figures(time_calls(encoder_router(folder, budget, 2, True), prompts))
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "classifier-speed.json").write_text(json.dumps(results, indent=2) + "\n",
                                                 encoding="utf-8")
    lines = ["| router | token budget | threads | p50 ms | p99 ms | mean ms |",
             "|---|---|---|---|---|---|"]
    for key, f in results["runs"].items():
        parts = key.split("-")
        budget, threads = (parts[1], parts[2]) if len(parts) == 3 else ("–", "–")
        lines.append(f"| {parts[0]} | {budget} | {threads} | {f['p50_ms']} | {f['p99_ms']} | "
                     f"{f['mean_ms']} |")
    (a.out / "classifier-speed.md").write_text(
        f"# Classification speed ({len(prompts)} held-out prompts, in process)\n\n"
        + "\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"load average (1, 5, 15 min) at the end: {results['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
