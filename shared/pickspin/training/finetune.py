"""Fine-tune the top layers of the pretrained encoder on real outcomes (torch; training only).

The lower layers stay frozen; the top `layers` transformer blocks and a per-tier linear head
on the mean-pooled, L2-normalised embedding (the serving pipeline's) are trained with binary
cross-entropy against the tiers' outcomes, keeping the best dev epoch. Only the encoder is
kept: `build.train_router` exports it with optimum and trains the calibrated heads on its
int8 embeddings, as for the frozen encoder.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pickspin.semantic.encoder import TOKENIZER_FILE, batch_ids, load_tokenizer
from pickspin.training.data import Example
from pickspin.training.targets import hard_targets

Progress = Callable[[str], None]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")
STAMP = "pickspin-finetune.json"


def _stamp(checkpoint: Path, train: Sequence[Example], dev: Sequence[Example],
           **params: Any) -> dict[str, Any]:
    """What a fine-tuned folder was made from: a run with the same stamp gives the same
    weights (fixed seed), so `finetune_encoder` keeps the folder instead of redoing it."""
    rows = hashlib.sha256("\n".join(e.key for e in (*train, *dev)).encode()).hexdigest()[:16]
    return {"checkpoint": str(checkpoint), "rows": rows, **params}


def _pooled(model: Any, ids: Any, mask: Any) -> Any:
    import torch

    hidden = model(input_ids=torch.from_numpy(ids),
                   attention_mask=torch.from_numpy(mask)).last_hidden_state
    m = torch.from_numpy(mask).unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def aux_models(rows: Sequence[Example]) -> tuple[str, ...]:
    """Labelled models other than the tier stand-ins with an outcome on ≥ 90 % of their
    source's rows: auxiliary fine-tuning targets (item difficulty for many models)."""
    from pickspin.training.labels import TIER_MAPS

    out: set[str] = set()
    for source, tier_map in TIER_MAPS.items():
        mine = [e for e in rows if e.outcome and e.outcome.source == source]
        seen: dict[str, int] = {}
        for e in mine:
            for m in e.outcome.scores:  # type: ignore[union-attr]
                seen[m] = seen.get(m, 0) + 1
        out |= {m for m, n in seen.items() if n >= 0.9 * len(mine) and m not in tier_map.models}
    return tuple(sorted(out))


def aux_targets(rows: Sequence[Example], models: Sequence[str]) -> tuple[Any, Any]:
    """n × len(models) outcomes (1/0) and mask (0 where a model has no outcome on a row)."""
    import numpy as np

    from pickspin.training.labels import is_correct

    y = np.zeros((len(rows), len(models)), dtype=np.float32)
    mask = np.zeros_like(y)
    for i, e in enumerate(rows):
        scores = e.outcome.scores if e.outcome else {}
        for j, m in enumerate(models):
            ok = is_correct(scores.get(m))
            if ok is not None:
                y[i, j], mask[i, j] = float(ok), 1.0
    return y, mask


def finetune_encoder(checkpoint: Path, train: Sequence[Example], dev: Sequence[Example],
                     out_dir: Path, *, max_length: int = 64, layers: int = 2, epochs: int = 2,
                     lr: float = 3e-5, batch_size: int = 32, seed: int = 13,
                     aux_weight: float = 0.0,
                     progress: Progress = print) -> tuple[Path, list[dict[str, float]]]:
    """Write the fine-tuned encoder (transformers format + tokenizer files) to `out_dir`, or
    keep the one already there when it was made from the same checkpoint, rows and settings.
    With `aux_weight` > 0 the other labelled models' outcomes (`aux_models`) are auxiliary
    targets, weighted so; the best epoch is still chosen on the tiers' dev BCE."""
    extra = {"aux_weight": aux_weight} if aux_weight > 0 else {}
    stamp = _stamp(checkpoint, train, dev, max_length=max_length, layers=layers,
                   epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, **extra)
    try:
        kept = json.loads((out_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = None
    if kept and kept.get("stamp") == stamp and (out_dir / "model.safetensors").is_file():
        progress(f"fine-tuned encoder kept from {out_dir} (same checkpoint, rows, settings)")
        return out_dir, list(kept.get("history", []))

    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)
    model = AutoModel.from_pretrained(str(checkpoint))
    tok = load_tokenizer(checkpoint / TOKENIZER_FILE, max_length)
    for p in model.parameters():
        p.requires_grad = False
    trainable = [p for block in model.encoder.layer[-layers:] for p in block.parameters()]
    for p in trainable:
        p.requires_grad = True
    aux = aux_models(train) if aux_weight > 0 else ()
    head = torch.nn.Linear(model.config.hidden_size, 3 + len(aux))
    a_y, a_m = (torch.from_numpy(a) for a in aux_targets(train, aux))
    opt = torch.optim.AdamW([{"params": trainable, "lr": lr},
                             {"params": head.parameters(), "lr": 1e-2}], weight_decay=0.01)
    bce = torch.nn.BCEWithLogitsLoss()
    y_train = torch.from_numpy(hard_targets(train)).float()
    y_dev = torch.from_numpy(hard_targets(dev)).float()
    rng = random.Random(seed)
    history: list[dict[str, float]] = []
    best, best_state = float("inf"), None
    start = time.monotonic()
    steps = (len(train) + batch_size - 1) // batch_size
    for epoch in range(1, epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = 0.0
        for b in range(steps):
            idx = order[b * batch_size : (b + 1) * batch_size]
            ids, mask, _ = batch_ids(tok, [train[i].text for i in idx])
            out = head(_pooled(model, ids, mask) * 10)
            loss = bce(out[:, :3], y_train[idx])
            if aux:
                raw = torch.nn.functional.binary_cross_entropy_with_logits(
                    out[:, 3:], a_y[idx], reduction="none")
                loss = loss + aux_weight * (raw * a_m[idx]).sum() / a_m[idx].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            if (b + 1) % 50 == 0:
                spent = time.monotonic() - start
                progress(f"fine-tune epoch {epoch} step {b + 1}/{steps} loss "
                         f"{total / (b + 1):.4f} ({spent:.0f}s)")
        model.eval()
        with torch.no_grad():
            logits = []
            for i in range(0, len(dev), 64):
                ids, mask, _ = batch_ids(tok, [d.text for d in dev[i : i + 64]])
                logits.append(head(_pooled(model, ids, mask) * 10)[:, :3])
            dev_loss = float(bce(torch.cat(logits), y_dev)) if logits else 0.0
        history.append({"epoch": epoch, "train_loss": total / max(steps, 1),
                        "dev_loss": dev_loss})
        progress(f"fine-tune epoch {epoch}: dev BCE {dev_loss:.4f}")
        if dev_loss < best:
            best = dev_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    for name in TOKENIZER_FILES:
        if (checkpoint / name).is_file():
            shutil.copyfile(checkpoint / name, out_dir / name)
    (out_dir / STAMP).write_text(json.dumps({"stamp": stamp, "history": history}, indent=2),
                                 encoding="utf-8")
    return out_dir, history
