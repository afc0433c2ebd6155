"""Classifier speed on this machine, measured in one run.

1. Hybrid routing latency per prompt (keyword rules + int8 ONNX model when needed), p50/p99,
   over real benchmark prompts of up to 512 tokens (plus the semantic router alone).
2. int8 ONNX vs PyTorch eager on the same model and the same inputs (batch 1): the ratio.

The PyTorch model is the fp32 checkpoint `pickspin train` leaves in its work folder; if that is
absent, a model of the same architecture (random weights, same shapes, so the same work) is
built, exported and quantised here, and the output says so.

    python benchmarks/classifier_speed.py [--prompts 400] [--threads 1] [--out reports/speed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pickspin.routers import KeywordRouter
from pickspin.semantic.data import default_data_dir, load_examples
from pickspin.semantic.hybrid import HybridRouter
from pickspin.semantic.runtime import (
    CONFIG_FILE,
    DEFAULT_MODEL_DIR,
    ModelConfig,
    SemanticRouter,
    open_session,
)
from pickspin.semantic.train import DEFAULT_WORK_DIR, encode
from pickspin.settings import Settings

MAX_TOKENS = 512


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def prompts_up_to(tokenizer: Any, n: int) -> list[str]:
    """Real held-out prompts, each cut to at most MAX_TOKENS tokens (whitespace words)."""
    data = default_data_dir()
    texts: list[str] = []
    if (data / "routing").is_dir():
        rows = [e for e in load_examples(data) if e.split == "test"]
        step = max(1, len(rows) // n)
        texts = [e.text for e in rows[::step]][:n]
    while len(texts) < n:  # no benchmark folder: synthetic prompts of growing length
        texts.append("Explain why the sum of two even numbers is even. " * (1 + len(texts) % 60))
    out = []
    for t in texts:
        words = t.split(" ")
        while len(tokenizer.encode(" ".join(words)).ids) > MAX_TOKENS:
            words = words[: int(len(words) * 0.8)]
        out.append(" ".join(words))
    return out


def time_calls(fn: Any, items: list[Any], repeat: int = 1) -> list[float]:
    for item in items[:20]:
        fn(item)
    ms = []
    for _ in range(repeat):
        for item in items:
            start = time.perf_counter()
            fn(item)
            ms.append((time.perf_counter() - start) * 1000)
    return ms


def torch_model(config: ModelConfig, work_dir: Path, threads: int) -> tuple[Any, Path, str]:
    """(PyTorch model, its int8 ONNX, where it came from)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from pickspin.semantic.train import TrainConfig, build_model, export_int8

    torch.set_num_threads(threads)
    checkpoint = work_dir / "torch"
    if (checkpoint / "config.json").is_file():
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
        return model.eval(), DEFAULT_MODEL_DIR / "model.onnx", f"trained checkpoint {checkpoint}"
    t = config.train
    cfg = TrainConfig(layers=t["layers"], dim=t["dim"], heads=t["heads"],
                      hidden_dim=t["hidden_dim"], max_length=config.max_length)
    model = build_model(cfg, int(t["vocab_size"]), config.pad_id).eval()
    tmp = Path(tempfile.mkdtemp(prefix="pickspin-speed-"))
    export_int8(model, tmp, tmp / "model.onnx")
    return model, tmp / "model.onnx", "same architecture, random weights (no checkpoint found)"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--prompts", type=int, default=400)
    p.add_argument("--threads", type=int, default=1, help="threads for both runtimes")
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    p.add_argument("--out", type=Path, default=None, help="also write speed.json / speed.md")
    a = p.parse_args(argv)

    settings = Settings.load()
    semantic = SemanticRouter.load(DEFAULT_MODEL_DIR, threads=a.threads)
    hybrid = HybridRouter(KeywordRouter(settings.routing.keywords), semantic,
                          settings.routing.hybrid_threshold)
    from tokenizers import Tokenizer

    counter = Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))
    counter.no_truncation()
    prompts = prompts_up_to(counter, a.prompts)
    lengths = [len(counter.encode(t).ids) for t in prompts]
    print(f"{len(prompts)} prompts, {min(lengths)}–{max(lengths)} tokens "
          f"(median {statistics.median(lengths):.0f}); threads {a.threads}", file=sys.stderr)

    hybrid_ms = time_calls(hybrid.timed, prompts, repeat=2)
    semantic_ms = time_calls(semantic.timed, prompts, repeat=2)

    config = ModelConfig.read(DEFAULT_MODEL_DIR / CONFIG_FILE)
    import torch

    model, onnx_file, origin = torch_model(config, a.work_dir, a.threads)
    session = open_session(onnx_file, a.threads)
    tok = semantic.tokenizer
    inputs = [encode(tok, [t], config.pad_id) for t in prompts]

    def run_torch(batch: Any) -> Any:
        with torch.inference_mode():
            return model(input_ids=torch.from_numpy(batch[0]),
                         attention_mask=torch.from_numpy(batch[1])).logits

    feeds = [{"input_ids": i, "attention_mask": m} for i, m in inputs]
    torch_ms = time_calls(run_torch, inputs)
    onnx_ms = time_calls(lambda f: session.run(None, f), feeds)

    result = {
        "prompts": len(prompts), "tokens_max": max(lengths), "threads": a.threads,
        "model_max_length": config.max_length,
        "hybrid_ms": {"p50": percentile(hybrid_ms, 50), "p99": percentile(hybrid_ms, 99)},
        "semantic_ms": {"p50": percentile(semantic_ms, 50), "p99": percentile(semantic_ms, 99)},
        "torch_eager_ms": {"mean": statistics.fmean(torch_ms), "p50": percentile(torch_ms, 50)},
        "onnx_int8_ms": {"mean": statistics.fmean(onnx_ms), "p50": percentile(onnx_ms, 50)},
        "speedup_mean": statistics.fmean(torch_ms) / statistics.fmean(onnx_ms),
        "speedup_p50": percentile(torch_ms, 50) / percentile(onnx_ms, 50),
        "pytorch_model": origin,
    }
    lines = [
        "| measure | p50 ms | p99 ms |", "|---|---|---|",
        f"| hybrid per prompt (≤ {MAX_TOKENS} tokens) | {result['hybrid_ms']['p50']:.2f} | "
        f"{result['hybrid_ms']['p99']:.2f} |",
        f"| semantic per prompt | {result['semantic_ms']['p50']:.2f} | "
        f"{result['semantic_ms']['p99']:.2f} |", "",
        "| model call, batch 1 | mean ms | p50 ms |", "|---|---|---|",
        f"| PyTorch eager (fp32) | {result['torch_eager_ms']['mean']:.2f} | "
        f"{result['torch_eager_ms']['p50']:.2f} |",
        f"| ONNX int8 (onnxruntime) | {result['onnx_int8_ms']['mean']:.2f} | "
        f"{result['onnx_int8_ms']['p50']:.2f} |", "",
        f"int8 ONNX speed-up over PyTorch eager: {result['speedup_mean']:.2f}× (mean), "
        f"{result['speedup_p50']:.2f}× (p50). PyTorch model: {origin}.",
    ]
    print("\n".join(lines))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
        (a.out / "speed.md").write_text("# Classifier speed\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
