"""The semantic router on the pretrained encoder: per-tier success probabilities, and the
complexity class derived from them; plus, for each configured model its tier's stand-ins do
not represent, that model's own success probability (`Classification.success[<model>]`, which
R̂ uses instead of the tier's estimate shifted by `abilityOffset`). Serving: onnxruntime +
tokenizers + numpy (no torch).

A model folder of this kind holds `encoder.onnx` (int8 all-MiniLM-L6-v2), `tokenizer.json`,
`head.npz` (`heads.HeadWeights`) and `config.json` with `"format": "encoder-heads"`, the
token budget and the class rule's thresholds.

>>> router = SuccessRouter.load(folder)                                   # doctest: +SKIP
>>> router.classify("Prove that sqrt(2) is irrational").success["large"]  # doctest: +SKIP
0.74
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pickspin.core.routers import Classification, Router
from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS, RouterName
from pickspin.semantic.encoder import ENCODER_FILE, TOKENIZER_FILE, OnnxEncoder
from pickspin.semantic.heads import ClassRule, HeadWeights, class_probabilities

FORMAT = "encoder-heads"
HEAD_FILE = "head.npz"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class SuccessConfig:
    max_length: int = 64
    rule: ClassRule = field(default_factory=ClassRule)
    base_model: str = ""
    train: Mapping[str, Any] = field(default_factory=dict)
    # configured models with their own success head (outputs after the tiers, in this order)
    models: tuple[str, ...] = ()

    @property
    def outputs(self) -> tuple[str, ...]:
        """Names of the head's outputs: the tiers, then the models with their own head."""
        return (*TIERS, *self.models)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "labels": list(COMPLEXITY_CLASSES), "tiers": list(TIERS),
                "models": list(self.models), "max_length": self.max_length,
                "class_rule": {"low_at": self.rule.low_at, "medium_at": self.rule.medium_at},
                "base_model": self.base_model, "train": dict(self.train)}

    @classmethod
    def read(cls, path: Path) -> SuccessConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: format is {data.get('format')!r}, not {FORMAT!r}")
        rule = data.get("class_rule", {})
        return cls(int(data.get("max_length", 64)),
                   ClassRule(float(rule.get("low_at", 0.5)), float(rule.get("medium_at", 0.5))),
                   str(data.get("base_model", "")), dict(data.get("train", {})),
                   tuple(str(m) for m in data.get("models", ())))


def is_encoder_heads(folder: Path) -> bool:
    try:
        data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


class SuccessRouter(Router):
    """Encoder → per-tier success heads → class. Collaborators are injectable."""

    name = RouterName.SEMANTIC.value

    def __init__(self, encoder: OnnxEncoder, head: HeadWeights, config: SuccessConfig) -> None:
        self._encoder = encoder
        self._head = head
        self._config = config

    @classmethod
    def load(cls, folder: Path, threads: int = 1) -> SuccessRouter:
        from pickspin.semantic.runtime import ModelLoadError

        missing = [n for n in (ENCODER_FILE, TOKENIZER_FILE, HEAD_FILE, CONFIG_FILE)
                   if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(f"router folder {folder} lacks {', '.join(missing)}")
        try:
            config = SuccessConfig.read(folder / CONFIG_FILE)
            head = HeadWeights.load(folder / HEAD_FILE)
            if head.w2.shape[1] != len(config.outputs):
                raise ValueError(f"head.npz has {head.w2.shape[1]} outputs, config.json names "
                                 f"{len(config.outputs)}")
            encoder = OnnxEncoder.load(folder / ENCODER_FILE, folder / TOKENIZER_FILE,
                                       config.max_length, threads)
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise ModelLoadError(f"cannot load the router in {folder}: {str(exc)[:300]}") \
                from exc
        return cls(encoder, head, config)

    @property
    def config(self) -> SuccessConfig:
        return self._config

    def success(self, prompts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Calibrated P(success) per output (n × k: TIERS order, then `config.models`) and
        per-prompt truncation."""
        vecs, truncated = self._encoder.embed(prompts)
        return self._head.success(vecs), truncated

    def classify(self, prompt: str) -> Classification:
        success, truncated = self.success([prompt])
        return self.from_success(success[0], truncated[0])

    def from_success(self, success: np.ndarray, truncated: bool = False) -> Classification:
        probs = class_probabilities(success[None, :])[0]
        cls = self._config.rule.classes(success[None, :])[0]
        return Classification.from_probabilities(
            dict(zip(COMPLEXITY_CLASSES, probs.tolist(), strict=True)), self.name,
            truncated=truncated, complexity=cls,
            success={t: round(float(p), 6)
                     for t, p in zip(self._config.outputs, success, strict=True)})
