"""How far a text-only router can classify the complexity label: label noise and ceilings.

The label of a prompt is the cheapest tier whose stand-in answered it (none → high), so it
is decided by the small and medium stand-ins alone (the large one never changes it). This
script measures, on the benchmark folder (never copied into the repo):

1. how often the label flips when one tier's stand-in is swapped for another labelled model
   of that tier and of about its accuracy: a text-only router cannot tell the two labellings
   apart, so its accuracy against one is at most (1 + agreement) / 2 if it does equally well
   against both (where the labellings disagree, at most one of them is right);
2. the held-out class accuracy of a router that *sees the other labelled models' outcomes*
   on each prompt (a logistic regression per tier fitted on train, class rule on dev; the
   tier and override stand-ins are never features, `targets.py`), against the committed text
   router and the most common class, with and without the recall floor of 0.35 per class.

    python benchmarks/label_ceiling.py [--data DIR] [--model DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pickspin.semantic.heads import fit_class_rule
from pickspin.training.data import Example, load_examples
from pickspin.training.labels import TIER_MAPS, is_correct, label_from_outcomes
from pickspin.training.targets import fit_soft_maps

# (source, what is swapped, the three models labelling small / medium / large)
SWAPS = (
    ("mmlu_pro", "small → Phi-3-mini-4k-instruct",
     ("Phi-3-mini-4k-instruct", "Meta-Llama-3_1-70B-Instruct", "gemini-1.5-pro-002")),
    ("mmlu_pro", "small → mathstral-7B",
     ("mathstral-7B", "Meta-Llama-3_1-70B-Instruct", "gemini-1.5-pro-002")),
    ("mmlu_pro", "medium → DeepSeek-Coder-V2",
     ("Meta-Llama-3_1-8B-Instruct", "DeepSeek-Coder-V2", "gemini-1.5-pro-002")),
    ("mmlu_pro", "large → gemini-1.5-flash-002",
     ("Meta-Llama-3_1-8B-Instruct", "Meta-Llama-3_1-70B-Instruct", "gemini-1.5-flash-002")),
    ("mmlu_pro", "all three (Phi-3-mini, DeepSeek-Coder-V2, gemini-1.5-flash)",
     ("Phi-3-mini-4k-instruct", "DeepSeek-Coder-V2", "gemini-1.5-flash-002")),
    ("routerbench", "small → WizardLM-13B-V1.2",
     ("WizardLM/WizardLM-13B-V1.2", "mistralai/mixtral-8x7b-chat", "gpt-4-1106-preview")),
    ("routerbench", "medium → gpt-3.5-turbo-1106",
     ("mistralai/mistral-7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview")),
)


def label_with(ex: Example, models: Sequence[str]) -> str | None:
    verdicts = [is_correct(ex.outcome.scores.get(m)) if ex.outcome else None for m in models]
    if any(v is None for v in verdicts):
        return None
    return label_from_outcomes([bool(v) for v in verdicts])


def accuracy_of(model: str, rows: Sequence[Example]) -> float:
    seen = [is_correct(e.outcome.scores.get(model)) for e in rows if e.outcome]
    return float(np.mean([bool(v) for v in seen if v is not None]))


def agreement(rows: Sequence[Example]) -> list[str]:
    lines = ["| set | swapped stand-in (accuracy: own vs tier's) | label agreement | "
             "ceiling (1 + A) / 2 | rows |", "|---|---|---|---|---|"]
    for source, what, models in SWAPS:
        mine = [e for e in rows if e.outcome and e.outcome.source == source]
        base = TIER_MAPS[source].models
        pairs = [(label_with(e, base), label_with(e, models)) for e in mine]
        kept = [(a, b) for a, b in pairs if a is not None and b is not None]
        agree = float(np.mean([a == b for a, b in kept]))
        swapped = [(m, b) for m, b in zip(models, base, strict=True) if m != b]
        accs = ", ".join(f"{accuracy_of(m, mine):.3f} vs {accuracy_of(b, mine):.3f}"
                         for m, b in swapped)
        lines.append(f"| {source} | {what} ({accs}) | {agree:.3f} | {(1 + agree) / 2:.3f} | "
                     f"{len(kept)} |")
    return lines


def class_accuracy(rows: Sequence[Example], pred: Sequence[str]) -> float:
    return float(np.mean([p == e.label for p, e in zip(pred, rows, strict=True)]))


def recalls(rows: Sequence[Example], pred: Sequence[str]) -> str:
    out = []
    for c in ("low", "medium", "high"):
        hits = [p == c for p, e in zip(pred, rows, strict=True) if e.label == c]
        out.append(f"{np.mean(hits):.2f}" if hits else "–")
    return " / ".join(out)


def ceilings(rows: Sequence[Example], model_dir: Path | None) -> list[str]:
    from pickspin.core.settings import Settings
    from pickspin.semantic.registry import load_semantic
    from pickspin.semantic.runtime import resolve_model_dir

    real = [e for e in rows if e.outcome]
    train = [e for e in real if e.split == "train"]
    maps = fit_soft_maps(train)
    folder = model_dir or resolve_model_dir(Settings.load(None).routing.semantic_model)
    router = load_semantic(folder)
    lines = ["| set | router | recall floor | class accuracy (test) | recall low / medium / "
             "high | most common class |", "|---|---|---|---|---|---|"]
    for source in ("mmlu_pro", "routerbench", "gsm8k"):
        dev = [e for e in real if e.split == "dev" and e.outcome.source == source]  # type: ignore[union-attr]
        test = [e for e in real if e.split == "test" and e.outcome.source == source]  # type: ignore[union-attr]
        common = collections.Counter(e.label for e in train
                                     if e.outcome.source == source)  # type: ignore[union-attr]
        top = common.most_common(1)[0][0]
        base = class_accuracy(test, [top] * len(test))
        said = {"text (committed router)": (_text(router, dev), _text(router, test))}
        if source in maps:
            said["sees the other models' outcomes"] = (
                np.array([maps[source].predict(e) for e in dev]),
                np.array([maps[source].predict(e) for e in test]))
        for name, (p_dev, p_test) in said.items():
            for floor in (0.35, 0.0):
                rule = fit_class_rule(p_dev, [e.label for e in dev], min_recall=floor)
                pred = rule.classes(p_test)
                lines.append(f"| {source} | {name} | {floor:g} | "
                             f"{class_accuracy(test, pred):.3f} | {recalls(test, pred)} | "
                             f"{top} {base:.3f} |")
    return lines


def _text(router: object, rows: Sequence[Example]) -> np.ndarray:
    from pickspin.semantic.success import SuccessRouter

    assert isinstance(router, SuccessRouter), "the committed router is the encoder router"
    out = [router.success([e.text for e in rows[i : i + 64]])[0][:, :3]
           for i in range(0, len(rows), 64)]
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--model", type=Path, default=None, help="router folder (default: config)")
    a = p.parse_args(argv)
    rows = load_examples(a.data, lambda m: print(m, file=sys.stderr))
    print("\n".join(["## Label agreement when a tier's stand-in is swapped", "",
                     *agreement(rows), "", "## Class accuracy: text against other models' "
                     "outcomes (held-out rows)", "", *ceilings(rows, a.model)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
