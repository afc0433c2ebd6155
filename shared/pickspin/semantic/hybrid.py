"""Hybrid routing: keyword rules settle the clear cases, the model refines the rest.

The keyword verdict stands when it is decisive — its top probability reaches the threshold
(`routing.hybridThreshold`) — otherwise the semantic model classifies the prompt.

>>> hybrid = HybridRouter(keyword, semantic, threshold=0.7)   # doctest: +SKIP
>>> hybrid.classify("Define entropy").router                   # doctest: +SKIP
'hybrid'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pickspin.routers import Classification, Router
from pickspin.settings import RouterName


@dataclass(frozen=True)
class HybridVerdict:
    """Which side decided, and the classification it gave."""

    decided_by: str
    classification: Classification


def decide(keyword: Classification, threshold: float) -> bool:
    """True when the keyword verdict is decisive enough to stand on its own."""
    return keyword.confidence >= threshold


def combine(keyword: Classification, semantic: Classification | None,
            threshold: float) -> HybridVerdict:
    """Pure: the keyword verdict if decisive, else the semantic one (which must be given)."""
    if decide(keyword, threshold) or semantic is None:
        return HybridVerdict(keyword.router, keyword)
    return HybridVerdict(semantic.router, semantic)


class HybridRouter(Router):
    name = RouterName.HYBRID.value

    def __init__(self, keyword: Router, semantic: Router, threshold: float) -> None:
        self._keyword = keyword
        self._semantic = semantic
        self._threshold = threshold

    def verdict(self, prompt: str) -> HybridVerdict:
        kw = self._keyword.classify(prompt)
        semantic = None if decide(kw, self._threshold) else self._semantic.classify(prompt)
        return combine(kw, semantic, self._threshold)

    def classify(self, prompt: str) -> Classification:
        chosen = self.verdict(prompt).classification
        probs: Mapping[str, float] = chosen.probabilities
        return Classification.from_probabilities(probs, self.name, truncated=chosen.truncated)
