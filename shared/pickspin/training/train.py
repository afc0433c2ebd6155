"""Train the complexity classifier (torch), export it with optimum, quantise it to int8.

Recipe (the paper's): DistilBERT sequence classification, cross-entropy, AdamW, batch 32.
With `base_model` a pretrained DistilBERT (local path or hub id) is fine-tuned at lr 2e-5.
Without one (offline), a compact DistilBERT is trained from scratch on a WordPiece vocabulary
learned from the training prompts; from random weights lr 2e-5 barely moves in a few epochs,
so that default is 5e-4. The dev split picks the best epoch; the test split is never seen.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pickspin.core.settings import COMPLEXITY_CLASSES
from pickspin.semantic.runtime import (
    CONFIG_FILE,
    DEFAULT_MODEL_DIR,
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelConfig,
)
from pickspin.training.data import Example, by_split, load_examples

Progress = Callable[[str], None]
DEFAULT_WORK_DIR = Path.home() / ".cache" / "pickspin" / "complexity-distilbert"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path | None = None
    out_dir: Path = DEFAULT_MODEL_DIR
    # fp32 checkpoint and ONNX land here (not committed; the speed benchmark reads them)
    work_dir: Path = DEFAULT_WORK_DIR
    base_model: str | None = None
    epochs: int = 5
    # stop when dev accuracy has not improved for this many epochs (the schedule still
    # spans `epochs`, so the kept weights do not depend on it)
    patience: int = 2
    batch_size: int = 32
    learning_rate: float | None = None
    max_length: int = 128
    vocab_size: int = 8000
    layers: int = 2
    dim: int = 256
    heads: int = 4
    hidden_dim: int = 1024
    seed: int = 13
    threads: int = 2
    # smoke runs: at most this many training rows and optimiser steps
    limit_rows: int | None = None
    limit_steps: int | None = None

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-5 if self.base_model else 5e-4


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    checkpoint_dir: Path
    history: tuple[dict[str, float], ...]
    best_epoch: int
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)


def learn_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A lower-cased BERT-style WordPiece tokenizer learned from `texts`."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                        min_frequency=2, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def prepare_tokenizer(tok: Any, max_length: int) -> Any:
    """[CLS] text [SEP], truncated to `max_length` tokens, unpadded (batches pad themselves)."""
    from tokenizers.processors import TemplateProcessing

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    return tok


def build_model(cfg: TrainConfig, vocab_size: int, pad_id: int) -> Any:
    from transformers import (
        AutoModelForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    labels = {"id2label": dict(enumerate(COMPLEXITY_CLASSES)),
              "label2id": {c: i for i, c in enumerate(COMPLEXITY_CLASSES)}}
    if cfg.base_model:
        return AutoModelForSequenceClassification.from_pretrained(
            cfg.base_model, num_labels=len(COMPLEXITY_CLASSES), **labels)
    config = DistilBertConfig(  # type: ignore[no-untyped-call]
        vocab_size=vocab_size, max_position_embeddings=max(cfg.max_length, 128),
        n_layers=cfg.layers, dim=cfg.dim, n_heads=cfg.heads, hidden_dim=cfg.hidden_dim,
        dropout=0.1, attention_dropout=0.1, seq_classif_dropout=0.1, pad_token_id=pad_id,
        num_labels=len(COMPLEXITY_CLASSES), **labels)
    return DistilBertForSequenceClassification(config)


def encode(tok: Any, texts: Sequence[str], pad_id: int) -> tuple[Any, Any]:
    """Token ids and attention mask (int64 numpy), padded to the longest in the batch."""
    import numpy as np

    encs = tok.encode_batch([t if t else " " for t in texts])
    width = max(len(e.ids) for e in encs)
    ids = np.full((len(encs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask


def predict_torch(model: Any, tok: Any, texts: Sequence[str], pad_id: int,
                  batch: int = 64) -> Any:
    """Class probabilities (numpy, n × 3) from the PyTorch model."""
    import numpy as np
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            ids, mask = encode(tok, texts[i : i + batch], pad_id)
            logits = model(input_ids=torch.from_numpy(ids),
                           attention_mask=torch.from_numpy(mask)).logits
            out.append(torch.softmax(logits, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(COMPLEXITY_CLASSES)))


def fit(model: Any, tok: Any, train: Sequence[Example], dev: Sequence[Example],
        cfg: TrainConfig, pad_id: int, progress: Progress) -> tuple[list[dict[str, float]], int]:
    """Cross-entropy + AdamW with linear decay; keeps the weights of the best dev epoch."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    labels = {c: i for i, c in enumerate(COMPLEXITY_CLASSES)}
    steps_per_epoch = (len(train) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    if cfg.limit_steps is not None:
        total = min(total, cfg.limit_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        opt, int(0.06 * total), max(total, 1))
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = random.Random(cfg.seed)
    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    step, start = 0, time.monotonic()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        running = 0.0
        for b in range(steps_per_epoch):
            if step >= total:
                break
            rows = [train[i] for i in order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
            ids, mask = encode(tok, [r.text for r in rows], pad_id)
            target = torch.tensor([labels[r.label] for r in rows])
            logits = model(input_ids=torch.from_numpy(ids),
                           attention_mask=torch.from_numpy(mask)).logits
            loss = loss_fn(logits, target)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
            if step % 50 == 0 or step == total:
                spent = time.monotonic() - start
                progress(f"epoch {epoch}/{cfg.epochs} step {step}/{total} "
                         f"loss {running / (b + 1):.4f} {spent:.0f}s elapsed, "
                         f"~{spent / step * (total - step):.0f}s left")
        probs = predict_torch(model, tok, [d.text for d in dev], pad_id)
        acc = float((probs.argmax(1) == [labels[d.label] for d in dev]).mean()) if dev else 0.0
        history.append({"epoch": epoch, "train_loss": running / max(steps_per_epoch, 1),
                        "dev_accuracy": acc})
        progress(f"epoch {epoch}: dev accuracy {acc:.4f}")
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step >= total or epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best_epoch


def export_int8(model: Any, work_dir: Path, out_file: Path) -> Path:
    """Export with optimum (fp32 ONNX in `work_dir`), quantise weights to int8 into `out_file`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import onnx_export_from_model

    onnx_dir = work_dir / "onnx-fp32"
    shutil.rmtree(onnx_dir, ignore_errors=True)
    onnx_export_from_model(model, onnx_dir, task="text-classification", do_validation=False)
    fp32 = onnx_dir / "model.onnx"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(fp32, out_file, weight_type=QuantType.QInt8)
    return fp32


def train(cfg: TrainConfig, progress: Progress = print,
          examples: Sequence[Example] | None = None) -> TrainResult:
    """Learn the tokenizer, train, export and quantise; writes model + tokenizer + config."""
    import numpy as np
    import torch

    start = time.monotonic()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rows = list(examples) if examples is not None else load_examples(cfg.data_dir, progress)
    splits = by_split(rows)
    train_rows = splits["train"][: cfg.limit_rows] if cfg.limit_rows else splits["train"]
    dev_rows = splits["dev"][: cfg.limit_rows] if cfg.limit_rows else splits["dev"]
    progress(f"train {len(train_rows)} rows, dev {len(dev_rows)} rows "
             f"(test {len(splits['test'])} rows are held out)")
    if cfg.base_model:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(  # type: ignore[no-untyped-call]
            cfg.base_model).backend_tokenizer
    else:
        tok = learn_tokenizer([r.text for r in train_rows], cfg.vocab_size)
    tok = prepare_tokenizer(tok, cfg.max_length)
    pad_id = tok.token_to_id("[PAD]") or 0
    progress(f"tokenizer: {tok.get_vocab_size()} WordPiece tokens")
    model = build_model(cfg, tok.get_vocab_size(), pad_id)
    n_params = sum(p.numel() for p in model.parameters())
    progress(f"model: DistilBERT, {n_params / 1e6:.1f} M parameters, lr {cfg.lr}")
    history, best_epoch = fit(model, tok, train_rows, dev_rows, cfg, pad_id, progress)

    checkpoint = cfg.work_dir / "torch"
    model.save_pretrained(checkpoint)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(checkpoint / TOKENIZER_FILE))
    tok.save(str(out / TOKENIZER_FILE))
    progress("exporting to ONNX (optimum) and quantising to int8 (onnxruntime)")
    export_int8(model, cfg.work_dir, out / MODEL_FILE)
    meta = ModelConfig(labels=COMPLEXITY_CLASSES, max_length=cfg.max_length, pad_id=pad_id,
                       base_model=cfg.base_model or "",
                       train=_train_summary(replace(cfg, out_dir=Path("."), work_dir=Path("."))))
    (out / CONFIG_FILE).write_text(json.dumps(asdict(meta), indent=2) + "\n", encoding="utf-8")
    size = (out / MODEL_FILE).stat().st_size / 1e6
    progress(f"wrote {out / MODEL_FILE} ({size:.1f} MB), tokenizer and config")
    return TrainResult(out, checkpoint, tuple(history), best_epoch, time.monotonic() - start,
                       {"train": len(train_rows), "dev": len(dev_rows),
                        "test": len(splits["test"])})


def _train_summary(cfg: TrainConfig) -> dict[str, Any]:
    keep = ("base_model", "epochs", "patience", "batch_size", "max_length", "vocab_size",
            "layers", "dim", "heads", "hidden_dim", "seed")
    summary = {k: getattr(cfg, k) for k in keep}
    summary["learning_rate"] = cfg.lr
    return summary
