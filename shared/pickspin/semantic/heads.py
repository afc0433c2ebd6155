"""Per-tier success heads on sentence embeddings: P(tier t answers this prompt correctly).

RouteLLM's routers predict a win rate; here one head predicts, for each tier (small, medium,
large), the chance that the tier's model answers well, from the encoder's embedding, and one
more per configured model that its tier's stand-ins do not represent (`labels.
STAND_IN_OVERRIDES`): the chance that *its* stand-in answers, learned on its own outcomes.
Training targets come from real outcomes (`targets.py`), soft where a source has many models
per item (MMLU-Pro: item difficulty from the other models, IRT-style). A one-hidden-layer MLP
(or a linear head) is trained with binary cross-entropy and early stopping on dev; Platt
scaling per tier, fitted on dev, calibrates it. The result is plain numpy weights, applied at
serving time without torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HeadWeights:
    """x (n × d) → logits (n × k): relu(x·W1 + b1)·W2 + b2 (no hidden layer: x·W2 + b2),
    then Platt scaling a·z + b per output: the tiers first (TIERS order), then the models
    with their own head (`SuccessConfig.models`)."""

    w1: np.ndarray | None
    b1: np.ndarray | None
    w2: np.ndarray
    b2: np.ndarray
    platt_a: np.ndarray
    platt_b: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float32)
        if self.w1 is not None and self.b1 is not None:
            h = np.maximum(h @ self.w1 + self.b1, 0.0)
        return np.asarray(h @ self.w2 + self.b2, dtype=np.float64)

    def success(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(success) per output, n × k: the tiers in TIERS order, then models."""
        z = self.logits(x) * self.platt_a + self.platt_b
        return np.asarray(1.0 / (1.0 + np.exp(-z)))

    def beside(self, other: HeadWeights) -> HeadWeights:
        """One head whose outputs are this head's, then `other`'s (both on the same input;
        hidden layers side by side, so each output sees only its own head's units)."""
        if (self.w1 is None) != (other.w1 is None):
            raise ValueError("cannot join a linear head with a hidden-layer head")
        w1 = b1 = None
        w2 = np.hstack([self.w2, other.w2])
        if self.w1 is not None and other.w1 is not None:
            w1 = np.hstack([self.w1, other.w1])
            b1 = np.concatenate([self.b1, other.b1])
            w2 = np.block([[self.w2, np.zeros((self.w2.shape[0], other.w2.shape[1]))],
                           [np.zeros((other.w2.shape[0], self.w2.shape[1])), other.w2]])
        return HeadWeights(w1, b1, w2, np.concatenate([self.b2, other.b2]),
                           np.concatenate([self.platt_a, other.platt_a]),
                           np.concatenate([self.platt_b, other.platt_b]))

    def save(self, path: Path) -> None:
        arrays = {"w2": self.w2, "b2": self.b2, "platt_a": self.platt_a,
                  "platt_b": self.platt_b}
        if self.w1 is not None and self.b1 is not None:
            arrays.update(w1=self.w1, b1=self.b1)
        np.savez_compressed(path, **{k: v.astype(np.float32)  # type: ignore[arg-type]
                                     for k, v in arrays.items()})

    @classmethod
    def load(cls, path: Path) -> HeadWeights:
        with np.load(path) as z:
            get = {k: np.asarray(z[k]) for k in z.files}
        w2 = get["w2"]
        if w2.ndim != 2 or w2.shape[1] < len(TIERS):
            raise ValueError(f"{path}: head output must have at least {len(TIERS)} columns")
        return cls(get.get("w1"), get.get("b1"), w2, get["b2"], get["platt_a"], get["platt_b"])


def class_probabilities(success: np.ndarray) -> np.ndarray:
    """P(class) from per-tier success, by the label's definition (the cheapest tier that
    answers; none → high), taking the tiers' outcomes as independent given the prompt:
    low = p_s, medium = (1 − p_s)·p_m, high = (1 − p_s)·(1 − p_m)."""
    ps, pm = success[:, 0], success[:, 1]
    return np.stack([ps, (1 - ps) * pm, (1 - ps) * (1 - pm)], axis=1)


@dataclass(frozen=True)
class ClassRule:
    """Complexity class from per-tier success: low when P(small) ≥ low_at, else medium when
    P(medium) ≥ medium_at, else high. Thresholds are chosen on dev (`fit_class_rule`)."""

    low_at: float = 0.5
    medium_at: float = 0.5

    def classes(self, success: np.ndarray) -> list[str]:
        out = []
        for ps, pm in success[:, :2]:
            out.append("low" if ps >= self.low_at else "medium" if pm >= self.medium_at
                       else "high")
        return out


def fit_class_rule(success: np.ndarray, labels: list[str], min_recall: float = 0.35
                   ) -> ClassRule:
    """The thresholds that maximise dev accuracy among those giving every class at least
    `min_recall` (if none does, the one with the best worst-class recall)."""
    grid = np.quantile(success[:, :2], np.linspace(0.02, 0.98, 49))
    truth = np.array([COMPLEXITY_CLASSES.index(lab) for lab in labels])
    best: tuple[float, float, ClassRule] | None = None
    for lo in grid:
        for me in grid:
            rule = ClassRule(float(lo), float(me))
            pred = np.array([COMPLEXITY_CLASSES.index(c) for c in rule.classes(success)])
            recalls = [float((pred[truth == k] == k).mean()) if (truth == k).any() else 1.0
                       for k in range(len(COMPLEXITY_CLASSES))]
            acc = float((pred == truth).mean())
            key = (min(min(recalls), min_recall), acc)
            if best is None or key > best[:2]:
                best = (key[0], key[1], rule)
    assert best is not None
    return best[2]


def _platt(z: np.ndarray, y: np.ndarray, w: np.ndarray, steps: int = 300) -> tuple[float, float]:
    """a, b minimising weighted log-loss of σ(a·z + b) against y (Newton steps)."""
    a, b = 1.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * z + b)))
        g = w * (p - y)
        grad = np.array([(g * z).sum(), g.sum()])
        h = w * p * (1 - p)
        hess = np.array([[(h * z * z).sum(), (h * z).sum()], [(h * z).sum(), h.sum()]])
        hess += 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 256
    dropout: float = 0.1
    weight_decay: float = 1e-4
    lr: float = 1e-3
    epochs: int = 60
    batch_size: int = 256
    patience: int = 8
    seed: int = 13


def fit_heads(x_train: np.ndarray, y_train: np.ndarray, m_train: np.ndarray,
              x_dev: np.ndarray, y_dev: np.ndarray, m_dev: np.ndarray,
              cfg: HeadConfig | None = None, progress: Progress = print
              ) -> tuple[HeadWeights, list[dict[str, float]]]:
    """Train on (x, soft target y, mask m) with masked BCE; keep the best dev-loss epoch;
    calibrate with Platt scaling on dev *hard* outcomes where the mask allows. One output
    per column of y (the tiers, then any models with their own head)."""
    import torch

    cfg = cfg or HeadConfig()
    torch.manual_seed(cfg.seed)
    d, k = x_train.shape[1], y_train.shape[1]
    layers: list[Any] = []
    if cfg.hidden:
        layers += [torch.nn.Dropout(cfg.dropout), torch.nn.Linear(d, cfg.hidden),
                   torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout),
                   torch.nn.Linear(cfg.hidden, k)]
    else:
        layers += [torch.nn.Linear(d, k)]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt, yt, mt = (torch.from_numpy(a.astype(np.float32)) for a in (x_train, y_train, m_train))
    xd, yd, md = (torch.from_numpy(a.astype(np.float32)) for a in (x_dev, y_dev, m_dev))
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    best, best_state, since = float("inf"), None, 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = (bce(net(xt[idx]), yt[idx]) * mt[idx]).sum() / mt[idx].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            dev_loss = float((bce(net(xd), yd) * md).sum() / md.sum().clamp(min=1))
        history.append({"epoch": epoch, "train_loss": total / len(xt), "dev_loss": dev_loss})
        if dev_loss < best - 1e-5:
            best, since = dev_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            since += 1
        if since >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    progress(f"heads: {len(history)} epochs, best dev BCE {best:.4f}")
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    w1 = b1 = None
    if len(linears) == 2:
        w1 = linears[0].weight.detach().numpy().T.copy()
        b1 = linears[0].bias.detach().numpy().copy()
    w2 = linears[-1].weight.detach().numpy().T.copy()
    b2 = linears[-1].bias.detach().numpy().copy()
    raw = HeadWeights(w1, b1, w2, b2, np.ones(k), np.zeros(k))
    z = raw.logits(x_dev)
    ab = [_platt(z[:, t], y_dev[:, t], m_dev[:, t]) for t in range(k)]
    return HeadWeights(w1, b1, w2, b2, np.array([a for a, _ in ab]),
                       np.array([b for _, b in ab])), history


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return float(total)


def write_head_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
