"""The semantic router at serving time: onnxruntime + tokenizers only (no torch).

>>> router = SemanticRouter.load(DEFAULT_MODEL_DIR)          # doctest: +SKIP
>>> router.classify("Prove that there are infinitely many primes").complexity  # doctest: +SKIP
'high'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pickspin.core.routers import Classification, Router
from pickspin.core.settings import COMPLEXITY_CLASSES, RouterName

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = PACKAGE_DIR / "models" / "complexity-distilbert"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"


class ModelLoadError(Exception):
    """The classifier folder is missing a file or holds one that cannot be loaded."""


@dataclass(frozen=True)
class ModelConfig:
    """`config.json` beside the model: label order, token budget and how it was trained."""

    labels: tuple[str, ...] = COMPLEXITY_CLASSES
    max_length: int = 128
    pad_id: int = 0
    base_model: str = ""
    train: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> ModelConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        labels = tuple(data.get("labels", COMPLEXITY_CLASSES))
        if sorted(labels) != sorted(COMPLEXITY_CLASSES):
            raise ModelLoadError(f"{path}: labels {labels} are not {COMPLEXITY_CLASSES}")
        return cls(labels, int(data.get("max_length", 128)), int(data.get("pad_id", 0)),
                   str(data.get("base_model", "")), dict(data.get("train", {})))


def resolve_model_dir(path: str | Path) -> Path:
    """`routing.semanticModel`: absolute, or relative to the pickspin package."""
    p = Path(path)
    return p if p.is_absolute() else PACKAGE_DIR / p


def open_session(model_file: Path, threads: int = 1, spinning: bool = False) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle intra-op threads sleep instead of spinning: on a shared 2-core machine spinning
    # doubled the CPU per prompt and the p50 under load (benchmarks/classifier_speed.py)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])


def _softmax(logits: Any) -> Any:
    import numpy as np

    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class SemanticRouter(Router):
    """The int8 ONNX DistilBERT complexity classifier. Collaborators are injectable."""

    name = RouterName.SEMANTIC.value

    def __init__(self, session: Any, tokenizer: Any, config: ModelConfig) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._config = config
        self._inputs = {i.name for i in session.get_inputs()}

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 1) -> SemanticRouter:
        """Open the folder's model, tokenizer and config; ModelLoadError says what is wrong."""
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        missing = [n for n in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)
                   if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(f"complexity model folder {folder} lacks {', '.join(missing)}")
        try:
            config = ModelConfig.read(folder / CONFIG_FILE)
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except (ValueError, OSError, Exception) as exc:  # tokenizers raises plain Exception
            raise ModelLoadError(f"cannot read tokenizer/config in {folder}: {exc}") from exc
        tokenizer.enable_truncation(max_length=config.max_length)
        tokenizer.no_padding()
        try:
            session = open_session(folder / MODEL_FILE, threads)
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ModelLoadError(
                f"cannot load ONNX model {folder / MODEL_FILE}: {str(exc)[:300]}") from exc
        return cls(session, tokenizer, config)

    @property
    def config(self) -> ModelConfig:
        return self._config

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def probabilities(self, prompts: Sequence[str]) -> tuple[Any, list[bool]]:
        """Class probabilities (n × 3, in COMPLEXITY_CLASSES order) and per-prompt truncation."""
        import numpy as np

        encs = self._tokenizer.encode_batch([p if p else " " for p in prompts])
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self._config.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        (logits,) = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
        probs = _softmax(logits.astype(np.float64))
        order = [self._config.labels.index(c) for c in COMPLEXITY_CLASSES]
        return probs[:, order], [bool(e.overflowing) for e in encs]

    def classify(self, prompt: str) -> Classification:
        probs, truncated = self.probabilities([prompt])
        return Classification.from_probabilities(
            dict(zip(COMPLEXITY_CLASSES, probs[0].tolist(), strict=True)), self.name,
            truncated=truncated[0])
