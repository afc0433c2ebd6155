"""Hybrid routing: keyword rules settle the clear cases, the model refines the rest.

The keyword verdict stands when it is decisive — its top probability reaches the threshold
(`routing.hybridThreshold`) — otherwise the semantic model classifies the prompt. When the
model estimates per-tier success (the encoder router), it runs on every prompt and its
estimates are kept even where the keywords set the class: the class (and so the selection
floor) follows a decisive keyword, R̂ follows the model.

>>> hybrid = HybridRouter(keyword, semantic, threshold=0.7)   # doctest: +SKIP
>>> hybrid.classify("Define entropy").router                   # doctest: +SKIP
'hybrid'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pickspin.core.routers import Classification, Router
from pickspin.core.settings import RouterName


@dataclass(frozen=True)
class HybridVerdict:
    """Which side decided, and the classification it gave."""

    decided_by: str
    classification: Classification
    semantic: Classification | None = None


def decide(keyword: Classification, threshold: float) -> bool:
    """True when the keyword verdict is decisive enough to stand on its own."""
    return keyword.confidence >= threshold


def combine(keyword: Classification, semantic: Classification | None,
            threshold: float) -> HybridVerdict:
    """Pure: the keyword verdict if decisive, else the semantic one (which must be given)."""
    if decide(keyword, threshold) or semantic is None:
        return HybridVerdict(keyword.router, keyword, semantic)
    return HybridVerdict(semantic.router, semantic, semantic)


class HybridRouter(Router):
    name = RouterName.HYBRID.value

    def __init__(self, keyword: Router, semantic: Router, threshold: float) -> None:
        self._keyword = keyword
        self._semantic = semantic
        self._threshold = threshold

    def verdict(self, prompt: str) -> HybridVerdict:
        kw = self._keyword.classify(prompt)
        needs_model = not decide(kw, self._threshold) or self._gives_success
        semantic = self._semantic.classify(prompt) if needs_model else None
        return combine(kw, semantic, self._threshold)

    @property
    def _gives_success(self) -> bool:
        from pickspin.semantic.success import SuccessRouter

        return isinstance(self._semantic, SuccessRouter)

    def classify(self, prompt: str) -> Classification:
        v = self.verdict(prompt)
        chosen = v.classification
        probs: Mapping[str, float] = chosen.probabilities
        success = v.semantic.success if v.semantic is not None else {}
        truncated = chosen.truncated or (v.semantic is not None and v.semantic.truncated)
        return Classification.from_probabilities(probs, self.name, truncated=truncated,
                                                  success=success,
                                                  complexity=chosen.complexity)
