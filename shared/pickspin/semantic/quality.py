"""quality(L, k): expected answer quality of model L on a prompt of class k, from real outcomes.

Estimated on the dev split only (never on evaluation rows), as the correctness of L's
labelled stand-in (`labels.stand_in`) averaged over rows weighted by the classifier's
probability of class k: R̂(p, L) = Σ_k p_k · quality(L, k) is then the expected correctness
of L under the shipped classifier. The table is written into the values file by editing the
`quality:` lines in place, so the file's comments stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pickspin.semantic.data import Example
from pickspin.semantic.labels import TIER_MAPS, is_correct, stand_in
from pickspin.settings import COMPLEXITY_CLASSES, TIERS, Settings

QualityTable = dict[str, dict[str, float]]


def weighted_quality(rows: Sequence[tuple[Sequence[float], bool]]) -> dict[str, float]:
    """Σ p_k·correct / Σ p_k per class, over (probabilities, correct) pairs."""
    out: dict[str, float] = {}
    for k, cls in enumerate(COMPLEXITY_CLASSES):
        weight = sum(p[k] for p, _ in rows)
        hits = sum(p[k] for p, ok in rows if ok)
        out[cls] = round(hits / weight, 3) if weight > 0 else 0.0
    return out


def _rows_for(model_of_source: Mapping[str, str], examples: Sequence[Example],
              probs: Sequence[Sequence[float]]) -> list[tuple[Sequence[float], bool]]:
    rows = []
    for ex, p in zip(examples, probs, strict=True):
        if ex.outcome is None or ex.outcome.source not in model_of_source:
            continue
        ok = is_correct(ex.outcome.scores.get(model_of_source[ex.outcome.source]))
        if ok is not None:
            rows.append((p, ok))
    return rows


def estimate_quality(settings: Settings, examples: Sequence[Example],
                     probs: Sequence[Sequence[float]]) -> QualityTable:
    """quality(L, k) for every configured model, pooled over every labelled source."""
    if any(ex.split == "test" for ex in examples):
        raise ValueError("quality must not be estimated on evaluation (test) rows")
    table: QualityTable = {}
    for model in settings.models:
        chosen = {src: stand_in(model.name, model.tier, src) for src in TIER_MAPS}
        stand_ins = {src: m for src, m in chosen.items() if m}
        table[model.name] = weighted_quality(_rows_for(stand_ins, examples, probs))
    return table


def tier_quality(source: str, examples: Sequence[Example],
                 probs: Sequence[Sequence[float]]) -> list[list[float]]:
    """quality[tier][class] for one labelled source's tier stand-ins (dev rows only)."""
    if any(ex.split == "test" for ex in examples):
        raise ValueError("quality must not be estimated on evaluation (test) rows")
    out = []
    for tier in TIERS:
        model = TIER_MAPS[source].models[TIERS.index(tier)]
        q = weighted_quality(_rows_for({source: model}, examples, probs))
        out.append([q[c] for c in COMPLEXITY_CLASSES])
    return out


def render_quality(values: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {values[k]:.2f}" for k in COMPLEXITY_CLASSES) + "}"


def write_quality(values_file: Path, table: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Replace each listed model's `quality: {...}` line; returns the models updated."""
    text = values_file.read_text(encoding="utf-8")
    updated = []
    for name, values in table.items():
        pattern = re.compile(
            rf"(-\s+name:\s*{re.escape(name)}\s*\n(?:[ \t]+(?!-)\S.*\n)*?[ \t]+quality:[ \t]*)"
            r"\{[^}\n]*\}")
        replacement = r"\g<1>" + render_quality(values).replace("\\", "\\\\")
        text, n = pattern.subn(replacement, text, 1)
        if n:
            updated.append(name)
    values_file.write_text(text, encoding="utf-8")
    return updated
