"""Synthetic held-out rows: the simulator's tests need no benchmark data or encoder."""

from __future__ import annotations

import pytest

from pickspin.core.settings import Settings
from pickspin.sim.prompts import PromptRow

CLASSES = {
    "low": ({"low": 0.8, "medium": 0.15, "high": 0.05},
            {"small": 0.85, "medium": 0.9, "large": 0.93}),
    "medium": ({"low": 0.15, "medium": 0.7, "high": 0.15},
               {"small": 0.3, "medium": 0.75, "large": 0.85}),
    "high": ({"low": 0.05, "medium": 0.15, "high": 0.8},
             {"small": 0.05, "medium": 0.3, "large": 0.7}),
}


def make_rows(settings: Settings, count: int = 60) -> dict[str, PromptRow]:
    """`count` rows cycling through the classes; the large tier answers everything, the
    small tier only low prompts, the medium tier low and medium ones."""
    rows = {}
    for i in range(count):
        cls = ("low", "medium", "high")[i % 3]
        probs, success = CLASSES[cls]
        rank = ("low", "medium", "high").index(cls)
        correct = {m.name: ("small", "medium", "large").index(m.tier) >= rank
                   for m in settings.models}
        key = f"test:{i}"
        rows[key] = PromptRow(key, "mmlu_pro", cls, probs, success, correct, f"prompt {i}")
    return rows


@pytest.fixture(scope="session")
def rows(settings: Settings) -> dict[str, PromptRow]:
    return make_rows(settings)
