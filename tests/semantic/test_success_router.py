"""The encoder router: per-tier success heads (calibration on a fixed sample), the class rule,
the IRT-style targets' cross-fitting, the committed int8 model against PyTorch, bad input,
and a training run on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS
from pickspin.semantic.encoder import ENCODER_FILE, TOKENIZER_FILE, mean_pool
from pickspin.semantic.heads import (
    ClassRule,
    HeadConfig,
    class_probabilities,
    ece,
    fit_class_rule,
    fit_heads,
)
from pickspin.semantic.registry import build_registry
from pickspin.semantic.success import SuccessRouter, is_encoder_heads
from pickspin.training.build import DEFAULT_OUT, RouterTrainConfig, train_router
from pickspin.training.data import Example, Outcome
from pickspin.training.labels import TIER_MAPS, label_from_outcomes, represented_by_tier
from pickspin.training.targets import (
    excluded_models,
    fit_soft_maps,
    model_targets,
    soft_targets,
)


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x in R^8; the true P(tier t succeeds) = σ(2·x0 + t) (larger tiers answer more)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    truth = 1 / (1 + np.exp(-(2 * x[:, :1] + np.arange(3)[None, :])))
    return x, truth, (rng.random((n, 3)) < truth).astype(float)


@pytest.fixture(scope="module")
def fitted():
    x, _, y = _sample(3000, 1)
    xd, _, yd = _sample(1000, 2)
    head, history = fit_heads(x, y, np.ones_like(y), xd, yd, np.ones_like(yd),
                              HeadConfig(hidden=0, epochs=40, lr=0.01), progress=lambda _m: None)
    return head, history


def test_success_heads_are_calibrated_on_a_fixed_sample(fitted):
    head, history = fitted
    x, truth, y = _sample(4000, 3)
    p = head.success(x)
    assert np.abs(p - truth).mean() < 0.05
    for t in range(3):
        assert ece(p[:, t], y[:, t]) < 0.05
    assert history[-1]["dev_loss"] <= history[0]["dev_loss"]


def test_success_rises_with_the_tier(fitted):
    head, _ = fitted
    p = head.success(_sample(500, 4)[0])
    assert (p[:, 2] >= p[:, 0]).mean() > 0.95


def test_head_weights_round_trip(fitted, tmp_path):
    from pickspin.semantic.heads import HeadWeights

    head, _ = fitted
    head.save(tmp_path / "head.npz")
    again = HeadWeights.load(tmp_path / "head.npz")
    x = _sample(10, 5)[0]
    assert np.allclose(again.success(x), head.success(x), atol=1e-5)


def test_class_probabilities_follow_the_label_definition():
    s = np.array([[0.9, 0.5, 0.5], [0.0, 1.0, 1.0], [0.0, 0.0, 0.3]])
    p = class_probabilities(s)
    assert np.allclose(p.sum(axis=1), 1)
    assert list(p.argmax(axis=1)) == [0, 1, 2]


def test_class_rule_chosen_on_dev_gives_every_class_its_recall():
    rng = np.random.default_rng(0)
    s = rng.random((600, 3))
    labels = [label_from_outcomes(list(rng.random(3) < row)) for row in s]
    rule = fit_class_rule(s, labels)
    pred = rule.classes(s)
    for c in COMPLEXITY_CLASSES:
        hits = [p == c for p, t in zip(pred, labels, strict=True) if t == c]
        assert np.mean(hits) >= 0.35
    assert ClassRule(0.5, 0.5).classes(np.array([[0.6, 0, 0], [0.1, 0.7, 0], [0, 0, 1]])) \
        == ["low", "medium", "high"]


def test_heads_side_by_side_give_each_head_its_own_outputs():
    x, _, y = _sample(400, 6)
    xd, _, yd = _sample(200, 7)
    for hidden in (0, 8):
        a, _ = fit_heads(x, y, np.ones_like(y), xd, yd, np.ones_like(yd),
                         HeadConfig(hidden=hidden, epochs=3), progress=lambda _m: None)
        b, _ = fit_heads(x, y[:, :1], np.ones_like(y[:, :1]), xd, yd[:, :1],
                         np.ones_like(yd[:, :1]), HeadConfig(hidden=hidden, epochs=3, seed=1),
                         progress=lambda _m: None)
        both = a.beside(b)
        assert np.allclose(both.success(xd), np.hstack([a.success(xd), b.success(xd)]),
                           atol=1e-5)


def test_a_head_with_more_outputs_than_its_config_names_is_refused(router, tmp_path):
    import shutil

    from pickspin.semantic.heads import HeadWeights
    from pickspin.semantic.runtime import ModelLoadError

    shutil.copytree(DEFAULT_OUT, tmp_path / "m")
    head = HeadWeights.load(tmp_path / "m" / "head.npz")
    head.beside(head).save(tmp_path / "m" / "head.npz")
    with pytest.raises(ModelLoadError, match="outputs"):
        SuccessRouter.load(tmp_path / "m")


# ---- targets ---------------------------------------------------------------------------
def _mmlu_row(i: int, rng: np.random.Generator) -> Example:
    models = TIER_MAPS["mmlu_pro"].models
    others = [f"probe-{k}" for k in range(8)]
    hard = rng.random()
    scores = {m: float(rng.random() > hard) for m in (*models, *others,
                                                      "gemini-1.5-flash-002", "Llama-2-7b-hf")}
    correct = tuple(bool(scores[m]) for m in models)
    return Example(f"mmlu_pro:{i}", "mmlu_pro", f"question {i}", label_from_outcomes(correct),
                   "outcome:mmlu_pro", Outcome("mmlu_pro", correct, scores))  # type: ignore[arg-type]


def test_soft_targets_never_use_the_stand_ins_they_are_measured_on():
    rng = np.random.default_rng(0)
    rows = [_mmlu_row(i, rng) for i in range(300)]
    maps = fit_soft_maps(rows)
    assert set(maps) == {"mmlu_pro"}
    assert not set(maps["mmlu_pro"].models) & excluded_models("mmlu_pro")
    assert {"gemini-1.5-flash-002", "Llama-2-7b-hf"} <= excluded_models("mmlu_pro")
    y = soft_targets(rows, maps, mix=1.0)
    assert ((y > 0) & (y < 1)).all()
    assert np.array_equal(soft_targets(rows, maps, mix=0.0),
                          np.array([[float(c) for c in r.outcome.correct] for r in rows]))


def test_model_targets_are_the_models_own_stand_ins_and_masked_where_there_is_none():
    rng = np.random.default_rng(0)
    rows = [_mmlu_row(i, rng) for i in range(20)]
    rb = Example("routerbench:1", "routerbench", "q", "low", "outcome:routerbench",
                 Outcome("routerbench", (True, True, True),
                         {"zero-one-ai/Yi-34B-Chat": 0.0}))
    y, mask = model_targets([*rows, rb], [("qwen-3-235b", "large"), ("gemma-3-270m", "small")])
    flash = [r.outcome.scores["gemini-1.5-flash-002"] for r in rows]
    assert y[:20, 0].tolist() == flash and mask[:20].all()
    assert (y[20, 0], mask[20, 0]) == (0.0, 1.0)  # Yi-34B-Chat's own outcome, not GPT-4's
    assert mask[20, 1] == 0.0  # no stand-in for Gemma 3 270M on RouterBench


# ---- the committed model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def router() -> SuccessRouter:
    assert is_encoder_heads(DEFAULT_OUT), f"the committed router is missing: {DEFAULT_OUT}"
    return SuccessRouter.load(DEFAULT_OUT)


def test_the_default_settings_serve_the_encoder_router(settings, router):
    semantic = build_registry(settings).get("semantic")
    assert isinstance(semantic, SuccessRouter)
    result = semantic.timed("Prove that the square root of 2 is irrational.")
    assert set(result.success) == {*TIERS, *semantic.config.models}
    # own heads (`pickspin train --own-heads`) only for models the tiers do not represent
    assert set(semantic.config.models) <= {m.name for m in settings.models
                                           if not represented_by_tier(m.name)}
    assert all(0 < v < 1 for v in result.success.values())
    assert result.complexity in COMPLEXITY_CLASSES
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("prompt", [
    "", " ", "x" * 100_000, b"\xff\xfe caf\xe9 \x00 prove it".decode("utf-8", "replace"),
    "😀🔥🚀" * 50, "\x00\x01\x02", "Σ∫∂√∞ ≠ ≤ ≥"])
def test_bad_input_gets_a_classification_never_a_crash(router, prompt):
    result = router.timed(prompt)
    assert result.complexity in COMPLEXITY_CLASSES
    assert all(np.isfinite(v) for v in result.success.values())


def test_long_prompts_say_they_were_truncated(router):
    assert router.timed("word " * 2000).truncated
    assert not router.timed("Define entropy.").truncated


PROMPTS = ["Prove that there are infinitely many primes.", "Define entropy.",
           "The following is a multiple choice question about law.\n\nA contract ...",
           "Write a Python function that returns the n-th Fibonacci number."]


def _torch_embeddings(folder, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-pooled embeddings of PROMPTS from the PyTorch model in `folder`."""
    import torch
    from transformers import AutoModel

    from pickspin.semantic.encoder import batch_ids, load_tokenizer

    model = AutoModel.from_pretrained(str(folder)).eval()
    ids, mask, _ = batch_ids(load_tokenizer(folder / TOKENIZER_FILE, max_length), PROMPTS)
    with torch.inference_mode():
        hidden = model(input_ids=torch.from_numpy(ids),
                       attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    return mean_pool(hidden, mask), ids, mask


def test_the_int8_onnx_export_matches_the_pytorch_encoder(tmp_path):
    pytest.importorskip("torch")
    from pickspin.semantic.encoder import OnnxEncoder, export_encoder, source_dir

    try:
        checkpoint = source_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"pretrained checkpoint not installed: {exc}")
    export_encoder(checkpoint, tmp_path / ENCODER_FILE, tmp_path)
    onnx = OnnxEncoder.load(tmp_path / ENCODER_FILE, checkpoint / TOKENIZER_FILE, 64)
    reference, _, _ = _torch_embeddings(checkpoint, 64)
    vecs, _ = onnx.embed(PROMPTS)
    # int8 dynamic quantisation: measured cosine 0.958–0.973 on these prompts
    assert (reference * vecs).sum(axis=1).min() > 0.94
    assert (tmp_path / ENCODER_FILE).stat().st_size < 25e6


def test_the_committed_encoder_matches_its_fine_tuned_pytorch_checkpoint(router):
    pytest.importorskip("torch")
    from pickspin.training.build import RouterTrainConfig

    cfg = RouterTrainConfig()
    torch_dir = (cfg.work_dir / f"ft{cfg.finetune_layers}x{cfg.finetune_epochs}-"
                 f"{cfg.finetune_length}" / "torch")
    if not (torch_dir / "model.safetensors").is_file():
        pytest.skip(f"the fine-tuned PyTorch checkpoint is not here ({torch_dir}): it exists "
                    "only where `pickspin train` ran")
    reference, _, _ = _torch_embeddings(torch_dir, router.config.max_length)
    vecs, _ = router._encoder.embed(PROMPTS)
    assert (reference * vecs).sum(axis=1).min() > 0.94
    head = router._head
    assert np.abs(head.success(reference) - head.success(vecs)).max() < 0.08


# ---- training on tiny data ----------------------------------------------------------------
def test_train_router_on_tiny_data_writes_a_loadable_folder(tmp_path):
    rng = np.random.default_rng(1)
    words = ["prove", "define", "integral", "capital", "theorem", "list", "derive", "sum"]
    rows: list[Example] = []
    i = 0
    while sum(r.split == "dev" for r in rows) < 12 or len(rows) < 80:
        text = " ".join(rng.choice(words, 6)) + f" {i}"
        hard = text.count("prove") + text.count("derive") + text.count("theorem")
        correct = (hard == 0, hard <= 1, True)
        key = f"gsm8k:{i}"
        scores = {m: float(c) for m, c in zip(TIER_MAPS["gsm8k"].models, correct, strict=True)}
        rows.append(Example(key, "gsm8k", text, label_from_outcomes(correct),
                            "outcome:gsm8k", Outcome("gsm8k", correct, scores)))
        i += 1
    cfg = RouterTrainConfig(out_dir=tmp_path / "router", max_length=16, threads=1,
                            finetune_layers=0, model_heads=(("qwen-3-235b", "large"),))
    result = train_router(cfg, progress=lambda _m: None, examples=rows)
    assert result.rows["dev"] >= 12
    loaded = SuccessRouter.load(tmp_path / "router")
    said = loaded.classify("prove derive theorem")
    assert said.complexity in COMPLEXITY_CLASSES
    assert set(said.success) == {*TIERS, "qwen-3-235b"}


def test_finetuning_the_top_layers_writes_an_encoder_optimum_can_export(tmp_path):
    pytest.importorskip("torch")
    from pickspin.semantic.encoder import source_dir
    from pickspin.training.finetune import finetune_encoder

    try:
        checkpoint = source_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"pretrained checkpoint not installed: {exc}")
    rows = [Example(f"gsm8k:{i}", "gsm8k", f"prove lemma {i}" if i % 2 else f"define x{i}",
                    "low", "outcome:gsm8k", Outcome("gsm8k", (i % 2 == 0, True, True)))
            for i in range(12)]
    folder, history = finetune_encoder(checkpoint, rows[:8], rows[8:], tmp_path / "ft",
                                       max_length=16, layers=1, epochs=1, batch_size=4,
                                       progress=lambda _m: None)
    assert len(history) == 1 and np.isfinite(history[0]["dev_loss"])
    assert (folder / "model.safetensors").is_file() and (folder / TOKENIZER_FILE).is_file()
    # the same checkpoint, rows and settings keep the folder; another seed fine-tunes again
    written = (folder / "model.safetensors").stat().st_mtime_ns
    again, kept = finetune_encoder(checkpoint, rows[:8], rows[8:], tmp_path / "ft",
                                   max_length=16, layers=1, epochs=1, batch_size=4,
                                   progress=lambda _m: None)
    assert again == folder and kept == history
    assert (folder / "model.safetensors").stat().st_mtime_ns == written
    finetune_encoder(checkpoint, rows[:8], rows[8:], tmp_path / "ft", max_length=16,
                     layers=1, epochs=1, batch_size=4, seed=14, progress=lambda _m: None)
    assert (folder / "model.safetensors").stat().st_mtime_ns != written


def test_auxiliary_fine_tuning_targets_are_the_other_models_never_the_tiers():
    from pickspin.training.finetune import aux_models, aux_targets

    rng = np.random.default_rng(3)
    rows = [_mmlu_row(i, rng) for i in range(30)]
    models = aux_models(rows)
    assert "probe-0" in models and "gemini-1.5-flash-002" in models
    assert not set(models) & set(TIER_MAPS["mmlu_pro"].models)
    y, mask = aux_targets(rows, (*models, "absent-model"))
    assert mask[:, :-1].all() and not mask[:, -1].any()
    assert y[:, models.index("probe-0")].tolist() == [r.outcome.scores["probe-0"] for r in rows]
