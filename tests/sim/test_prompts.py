"""Classified prompts are cached, and a cache made from other files or settings is not read."""

import json
from dataclasses import asdict

import pytest

from pickspin.sim.prompts import _fingerprint, load_rows


def _folders(tmp_path):
    data, model = tmp_path / "data", tmp_path / "model"
    (data / "routing").mkdir(parents=True)
    model.mkdir()
    (data / "mmlu_pro.jsonl.gz").write_bytes(b"rows")
    (model / "head.npz").write_bytes(b"head")
    return data, model


def test_a_matching_cache_is_read_without_classifying(settings, rows, tmp_path):
    data, model = _folders(tmp_path)
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"fingerprint": _fingerprint(settings, data, model),
                                 "rows": [asdict(r) for r in rows.values()]}))
    back = load_rows(settings, cache, data, model)
    assert {r.key: r for r in back} == rows


def test_a_cache_of_other_router_files_or_settings_is_not_trusted(settings, rows, tmp_path):
    data, model = _folders(tmp_path)
    key = _fingerprint(settings, data, model)
    (model / "head.npz").write_bytes(b"retrained head")
    assert _fingerprint(settings, data, model) != key
    other = settings.model_copy(update={"routing": settings.routing.model_copy(
        update={"hybrid_threshold": 0.5})})
    assert _fingerprint(other, data, model) != _fingerprint(settings, data, model)
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"fingerprint": key,
                                 "rows": [asdict(r) for r in rows.values()]}))
    # a stale cache means classifying again, which needs the real benchmark files
    with pytest.raises((FileNotFoundError, OSError)):
        load_rows(settings, cache, data, model, progress=lambda _m: None)
