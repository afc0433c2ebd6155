"""Fixtures for the semantic router tests: the committed model, the benchmark folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pickspin.semantic.runtime import DEFAULT_MODEL_DIR, MODEL_FILE, SemanticRouter
from pickspin.training.data import default_data_dir


@pytest.fixture(scope="session")
def semantic_router() -> SemanticRouter:
    if not (DEFAULT_MODEL_DIR / MODEL_FILE).is_file():
        pytest.fail(f"the committed classifier is missing: {DEFAULT_MODEL_DIR / MODEL_FILE}")
    return SemanticRouter.load(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "routing").is_dir():
        pytest.skip(f"benchmark data not found at {path} (set PICKSPIN_BENCHMARKS); "
                    "these tests need ../shared/data/benchmarks")
    return path
