"""Load the benchmark prompts and routing labels into labelled examples, and split them.

The split is decided by hashing each prompt's canonical key (benchmark + id), so a prompt
that appears in two label sources always falls on the same side: evaluation rows are never
trained or tuned on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pickspin.training.labels import (
    PROXY_CAPS,
    TIER_MAPS,
    is_correct,
    label_from_outcomes,
    proxy_label,
)

DATA_ENV = "PICKSPIN_BENCHMARKS"
BENCHMARKS = ("mmlu_pro", "gsm8k", "math", "arc", "hellaswag", "truthfulqa", "mbpp", "humaneval")
SPLITS = ("train", "dev", "test")
# Hash buckets (of 100): 0–19 test (evaluation only), 20–29 dev (early stopping, the quality
# table, calibration), 30–99 train.
TEST_BUCKETS = 20
DEV_BUCKETS = 10


def default_data_dir() -> Path:
    """$PICKSPIN_BENCHMARKS, else `<repo>/../shared/data/benchmarks`."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "benchmarks"


@dataclass(frozen=True)
class Outcome:
    """Real results of the three tiers' stand-ins on one prompt, plus every labelled model."""

    source: str
    correct: tuple[bool, bool, bool]
    scores: Mapping[str, float] = field(default_factory=dict)
    # Real dollar cost per model where the source has it (RouterBench), else empty.
    cost_usd: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    key: str
    benchmark: str
    text: str
    label: str
    label_source: str
    outcome: Outcome | None = None

    @property
    def split(self) -> str:
        return split_of(self.key)


def split_of(key: str) -> str:
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < TEST_BUCKETS:
        return "test"
    return "dev" if bucket < TEST_BUCKETS + DEV_BUCKETS else "train"


def _rank(key: str) -> str:
    return hashlib.sha256(("order:" + key).encode("utf-8")).hexdigest()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _last_block(prompt: str) -> str:
    """The question a few-shot RouterBench prompt ends with (its examples come first)."""
    return prompt.strip().split("\n\n")[-1].strip()


def _outcome(source: str, scores: Mapping[str, float | None],
             cost: Mapping[str, float] | None = None) -> Outcome | None:
    verdicts = [is_correct(scores.get(m)) for m in TIER_MAPS[source].models]
    if any(v is None for v in verdicts):
        return None
    clean = {m: float(s) for m, s in scores.items() if s is not None}
    return Outcome(source, (bool(verdicts[0]), bool(verdicts[1]), bool(verdicts[2])),
                   clean, dict(cost or {}))


def load_examples(data_dir: Path | None = None,
                  progress: Callable[[str], None] = lambda _msg: None) -> list[Example]:
    """Every labelled example: real outcomes where `routing/` has them, proxies elsewhere."""
    root = Path(data_dir or default_data_dir())
    if not (root / "routing").is_dir():
        raise FileNotFoundError(f"no benchmark folder with routing/ at {root} (set --data or "
                                f"${DATA_ENV})")
    rows: dict[str, dict[str, Any]] = {}
    for name in BENCHMARKS:
        for row in read_jsonl(root / f"{name}.jsonl.gz"):
            rows[row["id"]] = row
        progress(f"read {name}")
    outcomes: dict[str, tuple[str, Outcome]] = {}  # key → (text, outcome)

    for row in read_jsonl(root / "routing" / "mmlu_pro_29models.jsonl.gz"):
        bench = rows.get(row["benchmark_id"])
        out = _outcome("mmlu_pro", row["labels"])
        if bench and out:
            outcomes.setdefault(f"mmlu_pro:{bench['id']}", (bench["prompt"], out))

    for row in read_jsonl(root / "routing" / "routerbench_0shot_subset.jsonl.gz"):
        out = _outcome("routerbench", row["labels"], row.get("cost_usd"))
        if out is None:
            continue
        bench = rows.get(row["benchmark_id"] or "")
        if bench:
            outcomes.setdefault(f"{bench['benchmark']}:{bench['id']}", (bench["prompt"], out))
        else:
            outcomes.setdefault(f"routerbench:{row['sample_id']}",
                                (_last_block(row["prompt"]), out))

    small: dict[str, float] = {}
    for row in read_jsonl(root / "routing" / "routerdc_7models.jsonl.gz"):
        if row["benchmark"] == "gsm8k" and row["benchmark_id"]:
            small[row["benchmark_id"]] = row["labels"]["meta-llama/Meta-Llama-3-8B"]
    for row in read_jsonl(root / "routing" / "routellm_gpt4_vs_mixtral.jsonl.gz"):
        bench = rows.get(row["benchmark_id"] or "")
        if row["benchmark"] != "gsm8k" or not bench or bench["id"] not in small:
            continue
        scores = {**row["labels"], TIER_MAPS["gsm8k"].small: small[bench["id"]]}
        out = _outcome("gsm8k", scores)
        if out:
            outcomes.setdefault(f"gsm8k:{bench['id']}", (bench["prompt"], out))
    progress(f"joined {len(outcomes)} prompts with real per-tier outcomes")

    examples = [
        Example(key, key.split(":", 1)[0], text, label_from_outcomes(out.correct),
                f"outcome:{out.source}", out)
        for key, (text, out) in outcomes.items()
    ]
    examples.extend(proxy_examples(rows.values(), set(outcomes)))
    examples.sort(key=lambda e: e.key)
    progress(f"{len(examples)} labelled examples")
    return examples


def proxy_examples(rows: Any, taken: set[str]) -> list[Example]:
    """Benchmark rows → examples with their documented proxy label, capped per benchmark;
    `taken` keys already have a label from real outcomes."""
    by_bench: dict[str, list[Example]] = {}
    for row in rows:
        key = f"{row['benchmark']}:{row['id']}"
        label = proxy_label(row["benchmark"], row.get("meta") or {})
        if key in taken or label is None or not row["prompt"]:
            continue
        by_bench.setdefault(row["benchmark"], []).append(
            Example(key, row["benchmark"], row["prompt"], label, f"proxy:{row['benchmark']}"))
    kept: list[Example] = []
    for bench, items in by_bench.items():
        items.sort(key=lambda e: _rank(e.key))
        kept.extend(items[: PROXY_CAPS.get(bench, len(items))])
    return kept


def by_split(examples: list[Example]) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for ex in examples:
        out[ex.split].append(ex)
    return out
