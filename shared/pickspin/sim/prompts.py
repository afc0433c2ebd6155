"""The prompts a simulated trace draws from: held-out rows with real per-model outcomes,
each classified once by the configured router and cached.

A row carries what the router said of the prompt (class, class probabilities, per-tier
success) and, per configured model, the real outcome of the labelled model that stands in
for it on the row's source (`training.labels.stand_in`, as in `training.pick_replay`). A
model without a stand-in on a source has no outcome there; the simulator never routes such a
row to it. The cache is keyed by everything the rows depend on (router files, benchmark
files, routing settings and the models), so a stale cache is never read.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pickspin.core.settings import COMPLEXITY_CLASSES, Settings

Progress = Callable[[str], None]
CACHE_VERSION = 3  # 2: success carries the models' own heads; 3: settled


@dataclass(frozen=True)
class PromptRow:
    key: str
    source: str
    complexity: str
    probabilities: Mapping[str, float]
    #: calibrated P(success) per tier, then per model with its own head; empty when the
    #: router gives none
    success: Mapping[str, float]
    #: configured model → its stand-in's real outcome (models without one are absent)
    correct: Mapping[str, bool]
    text: str
    #: the hybrid's short-prompt rule settled the class
    settled: bool = False


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fingerprint(settings: Settings, data_dir: Path, model_dir: Path) -> str:
    from pickspin.training.labels import STAND_IN_OVERRIDES, TIER_MAPS

    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for folder in (model_dir, data_dir, data_dir / "routing"):
        for f in sorted(folder.glob("*")):
            if f.is_file() and f.suffix != ".md":
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    routing = settings.routing
    h.update(json.dumps([routing.mode.value, routing.hybrid_threshold, routing.settle_words,
                         routing.keywords.model_dump(mode="json"),
                         [(m.name, m.tier) for m in settings.models],
                         {k: v.models for k, v in TIER_MAPS.items()},
                         {k: dict(v) for k, v in STAND_IN_OVERRIDES.items()}],
                        sort_keys=True).encode())
    return h.hexdigest()[:20]


def classify_rows(settings: Settings, data_dir: Path | None = None,
                  model_dir: Path | None = None, progress: Progress = _log) -> list[PromptRow]:
    """Held-out (test split) rows with real outcomes, through the configured router
    (keyword, semantic or hybrid, exactly as `pickspin replay` runs it)."""
    from pickspin.core.routers import KeywordRouter
    from pickspin.semantic.registry import load_semantic
    from pickspin.semantic.runtime import resolve_model_dir
    from pickspin.training.data import load_examples
    from pickspin.training.labels import is_correct
    from pickspin.training.outputs import all_outputs
    from pickspin.training.pick_replay import router_rows, stand_ins

    folder = model_dir or resolve_model_dir(settings.routing.semantic_model)
    rows = [e for e in load_examples(data_dir, progress) if e.split == "test" and e.outcome]
    keyword = KeywordRouter(settings.routing.keywords)
    progress(f"classifying {len(rows)} held-out prompts once with the "
             f"{settings.routing.mode.value} router")
    outputs, _ = all_outputs(rows, load_semantic(folder), keyword,
                             settings.routing.hybrid_threshold, progress,
                             settings.routing.settle_words)
    used = outputs[settings.routing.mode.value]
    said = router_rows(used.probs, used.classes, used.success, used.names, used.settled)
    who = stand_ins(settings)
    out = []
    for ex, r in zip(rows, said, strict=True):
        assert ex.outcome is not None
        src = ex.outcome.source
        correct = {}
        for m in settings.models:
            verdict = is_correct(ex.outcome.scores.get(who[src][m.name] or ""))
            if who[src][m.name] is not None and verdict is not None:
                correct[m.name] = verdict
        out.append(PromptRow(ex.key, src, r.complexity,
                             {k: round(float(r.probabilities[k]), 6) for k in COMPLEXITY_CLASSES},
                             {t: round(float(p), 6) for t, p in r.success.items()},
                             correct, ex.text, r.settled))
    return out


def load_rows(settings: Settings, cache: Path, data_dir: Path | None = None,
              model_dir: Path | None = None, progress: Progress = _log) -> list[PromptRow]:
    """The classified rows, from `cache` when it matches, else classified and cached."""
    from pickspin.semantic.runtime import resolve_model_dir
    from pickspin.training.data import default_data_dir

    data = Path(data_dir or default_data_dir())
    folder = model_dir or resolve_model_dir(settings.routing.semantic_model)
    key = _fingerprint(settings, data, folder)
    try:
        stored: dict[str, Any] = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("fingerprint") == key:
            return [PromptRow(**r) for r in stored["rows"]]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    rows = classify_rows(settings, data, folder, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"fingerprint": key, "rows": [asdict(r) for r in rows]}),
                     encoding="utf-8")
    progress(f"cached {len(rows)} classified prompts in {cache}")
    return rows
