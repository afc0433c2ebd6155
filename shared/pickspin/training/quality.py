"""quality(L, k): expected answer quality of model L on a prompt of class k, from real outcomes.

quality(L, k) = the share of labelled prompts of class k that L's stand-in (`labels.stand_in`)
answered correctly, over the train and dev splits only (never evaluation rows). By the law of
total expectation, R̂(p, L) = Σ_k p_k · quality(L, k) is then L's expected correctness when p
is the prompt's class distribution. Since the class *is* the cheapest tier that answered,
a tier's own stand-in scores 1 on its class and below it and 0 above it; configured models
represented by other labelled models get graded values. The table is written into the values
file by editing the `quality:` lines in place, so the file's comments stay.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS, Settings
from pickspin.training.data import Example
from pickspin.training.labels import TIER_MAPS, is_correct, stand_in

QualityTable = dict[str, dict[str, float]]


def grouped_quality(rows: Sequence[tuple[str, bool]]) -> dict[str, float]:
    """Share correct per class over (label, correct) pairs; 0 for a class with no rows."""
    out: dict[str, float] = {}
    for cls in COMPLEXITY_CLASSES:
        hits = [ok for label, ok in rows if label == cls]
        out[cls] = round(sum(hits) / len(hits), 3) if hits else 0.0
    return out


def _rows_for(model_of_source: Mapping[str, str], examples: Sequence[Example]
              ) -> list[tuple[str, bool]]:
    if any(ex.split == "test" for ex in examples):
        raise ValueError("quality must not be estimated on evaluation (test) rows")
    rows = []
    for ex in examples:
        if ex.outcome is None or ex.outcome.source not in model_of_source:
            continue
        ok = is_correct(ex.outcome.scores.get(model_of_source[ex.outcome.source]))
        if ok is not None:
            rows.append((ex.label, ok))
    return rows


def estimate_quality(settings: Settings, examples: Sequence[Example]) -> QualityTable:
    """quality(L, k) for every configured model, pooled over every labelled source."""
    table: QualityTable = {}
    for model in settings.models:
        chosen = {src: stand_in(model.name, model.tier, src) for src in TIER_MAPS}
        stand_ins = {src: m for src, m in chosen.items() if m}
        table[model.name] = grouped_quality(_rows_for(stand_ins, examples))
    return table


def tier_quality(source: str, examples: Sequence[Example]) -> list[list[float]]:
    """quality[tier][class] for one labelled source's tier stand-ins."""
    out = []
    for tier in TIERS:
        model = TIER_MAPS[source].models[TIERS.index(tier)]
        q = grouped_quality(_rows_for({source: model}, examples))
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


def ability_offsets(settings: Settings, examples: Sequence[Example]) -> dict[str, float]:
    """abilityOffset per configured model: the logit of its stand-in's accuracy minus that of
    its tier's stand-in, averaged over the sources where the two differ (train + dev rows);
    0 for a model its tier's stand-ins represent."""
    if any(ex.split == "test" for ex in examples):
        raise ValueError("ability offsets must not be estimated on evaluation (test) rows")
    out: dict[str, float] = {}
    for model in settings.models:
        shifts = []
        for source, tier_map in TIER_MAPS.items():
            own = stand_in(model.name, model.tier, source)
            base = tier_map.models[TIERS.index(model.tier)]
            if own is None or own == base:
                continue
            seen = [(is_correct(e.outcome.scores.get(own)), is_correct(e.outcome.scores.get(base)))
                    for e in examples if e.outcome and e.outcome.source == source]
            pairs = [(bool(a), bool(b)) for a, b in seen if a is not None and b is not None]
            if len(pairs) < 50:
                continue
            acc = [(sum(p[i] for p in pairs) + 0.5) / (len(pairs) + 1) for i in (0, 1)]
            shifts.append(math.log(acc[0] / (1 - acc[0])) - math.log(acc[1] / (1 - acc[1])))
        out[model.name] = round(sum(shifts) / len(shifts), 3) if shifts else 0.0
    return out


def write_ability_offsets(values_file: Path, offsets: Mapping[str, float]) -> list[str]:
    """Set each model's `abilityOffset:` line (added after its `quality:` line if absent)."""
    text = values_file.read_text(encoding="utf-8")
    updated = []
    for name, value in offsets.items():
        block = re.compile(
            rf"(-\s+name:\s*{re.escape(name)}\s*\n(?:[ \t]+(?!-)\S.*\n)*?)([ \t]+)(quality:.*\n)"
            r"(?:[ \t]+abilityOffset:.*\n)?")
        text, n = block.subn(rf"\g<1>\g<2>\g<3>\g<2>abilityOffset: {value}\n", text, 1)
        if n:
            updated.append(name)
    values_file.write_text(text, encoding="utf-8")
    return updated
