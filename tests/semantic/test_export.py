"""The training path end to end on a handful of synthetic rows: the exported ONNX (fp32 and
int8) classifies like the PyTorch model it came from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pickspin.semantic.runtime import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, SemanticRouter
from pickspin.training.data import Example

torch = pytest.importorskip("torch", reason="torch is needed to train and export (the [train] "
                                            "extra); serving does not need it")
pytest.importorskip("optimum.exporters.onnx", reason="optimum-onnx exports the model")
transformers = pytest.importorskip("transformers")

SAMPLES = [
    "What is the capital of Peru?",
    "Prove that the square root of two is irrational.",
    "Write a python function to reverse a string.",
    "Derive the closed form of the sum of the first n cubes and justify each step.",
    "Name three primary colours.",
    "The following is a multiple choice question about law.\n\nA. yes\nB. no",
    "",
    "x" * 3000,
]


def _rows(n: int = 90) -> list[Example]:
    words = ["define", "prove", "list", "derive", "sum", "analyse", "name", "theorem"]
    return [Example(f"synthetic:{i}", "synthetic",
                    f"{words[i % 8]} item {i} " + "filler " * (i % 13),
                    ("low", "medium", "high")[i % 3], "proxy:synthetic") for i in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from pickspin.training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("train")
    cfg = TrainConfig(out_dir=root / "model", work_dir=root / "work", epochs=1, layers=1,
                      dim=32, heads=2, hidden_dim=64, vocab_size=300, max_length=64,
                      limit_steps=3, threads=1)
    result = train(cfg, progress=lambda _m: None, examples=_rows())
    return cfg, result


def test_training_writes_model_tokenizer_and_config(trained):
    cfg, result = trained
    for name in (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE):
        assert (cfg.out_dir / name).is_file()
    meta = json.loads((cfg.out_dir / CONFIG_FILE).read_text())
    assert meta["labels"] == ["low", "medium", "high"]
    assert meta["max_length"] == 64
    assert result.history and result.best_epoch == 1


def test_onnx_gives_the_same_class_as_pytorch(trained):
    from pickspin.semantic.runtime import ModelConfig, open_session
    from pickspin.training.train import predict_torch

    cfg, result = trained
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        result.checkpoint_dir)
    int8 = SemanticRouter.load(cfg.out_dir)
    config = ModelConfig.read(cfg.out_dir / CONFIG_FILE)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(cfg.out_dir / TOKENIZER_FILE))
    fp32 = SemanticRouter(open_session(cfg.work_dir / "onnx-fp32" / MODEL_FILE), tok, config)
    reference = predict_torch(model, int8.tokenizer, SAMPLES, config.pad_id)
    fp32_probs, _ = fp32.probabilities(SAMPLES)
    int8_probs, _ = int8.probabilities(SAMPLES)
    assert (fp32_probs.argmax(1) == reference.argmax(1)).all()
    assert abs(fp32_probs - reference).max() < 1e-4
    # int8 weights move the logits a little: the class must agree wherever PyTorch is not
    # at a near-tie (this tiny, barely trained model has some).
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.02
    assert (int8_probs.argmax(1) == reference.argmax(1))[clear].all()
    assert abs(int8_probs - reference).max() < 0.05


def test_base_model_path_fine_tunes_a_local_pretrained_checkpoint(tmp_path):
    """`--base-model` loads weights and tokenizer with from_pretrained (here a local folder)."""
    from transformers import DistilBertConfig, DistilBertModel, PreTrainedTokenizerFast

    from pickspin.training.train import TrainConfig, learn_tokenizer, train

    tok = learn_tokenizer([r.text for r in _rows()], vocab_size=200)
    base = tmp_path / "base"
    DistilBertModel(DistilBertConfig(vocab_size=tok.get_vocab_size(), n_layers=1, dim=32,
                                     n_heads=2, hidden_dim=64)).save_pretrained(base)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]").save_pretrained(base)
    cfg = TrainConfig(out_dir=tmp_path / "model", work_dir=tmp_path / "work", epochs=1,
                      base_model=str(base), limit_steps=2, threads=1, max_length=64)
    assert cfg.lr == 2e-5
    train(cfg, progress=lambda _m: None, examples=_rows())
    meta = json.loads((cfg.out_dir / CONFIG_FILE).read_text())
    assert meta["base_model"] == str(base)
    router = SemanticRouter.load(cfg.out_dir)
    assert router.classify("Prove it").complexity in ("low", "medium", "high")
