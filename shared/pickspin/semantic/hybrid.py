"""Hybrid routing: keyword rules settle the clear cases, the model refines the rest.

The keyword verdict stands when it is decisive — its top probability reaches the threshold
(`routing.hybridThreshold`) — otherwise the semantic model classifies the prompt. When the
model estimates per-tier success (the encoder router), it runs on every prompt and its
estimates are kept even where the keywords set the class: the class (and so the selection
floor) follows a decisive keyword, R̂ follows the model.

The short-prompt rule (`routing.settleWords`, `KeywordRouter.settles`) settles the class of a
short prompt whose keywords are all on one side whatever the threshold, and marks it
`settled`: the selector then applies its settled floor (`selection.settled_floor`: the
profile's `settledTiers`) and scores a settled low class on the models' quality for it, so the
encoder is not run for one (README, issue 8).

>>> hybrid = HybridRouter(keyword, semantic, threshold=0.7)   # doctest: +SKIP
>>> hybrid.classify("Define entropy").router                   # doctest: +SKIP
'hybrid'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pickspin.core.routers import ONE_SIDED, Classification, KeywordRouter, Router
from pickspin.core.settings import RouterName


@dataclass(frozen=True)
class HybridVerdict:
    """Which side decided, and the classification it gave."""

    decided_by: str
    classification: Classification
    semantic: Classification | None = None
    settled: bool = False


def decide(keyword: Classification, threshold: float) -> bool:
    """True when the keyword verdict is decisive enough to stand on its own."""
    return keyword.confidence >= threshold


def settled_verdict(complexity: str, router: str) -> Classification:
    """The keyword-side classification of a class the short-prompt rule settled."""
    return Classification.from_probabilities(ONE_SIDED[complexity], router,
                                             complexity=complexity, settled=True)


def combine(keyword: Classification, semantic: Classification | None,
            threshold: float, settled: str | None = None) -> HybridVerdict:
    """Pure: the class `settled` by the short-prompt rule, else the keyword verdict if
    decisive, else the semantic one (which must be given)."""
    if settled is not None:
        return HybridVerdict(keyword.router, settled_verdict(settled, keyword.router),
                             semantic, settled=True)
    if decide(keyword, threshold) or semantic is None:
        return HybridVerdict(keyword.router, keyword, semantic)
    return HybridVerdict(semantic.router, semantic, semantic)


class HybridRouter(Router):
    name = RouterName.HYBRID.value

    def __init__(self, keyword: Router, semantic: Router, threshold: float,
                 settle_words: int = 0) -> None:
        self._keyword = keyword
        self._semantic = semantic
        self._threshold = threshold
        self._settle_words = settle_words

    def verdict(self, prompt: str) -> HybridVerdict:
        kw = self._keyword.classify(prompt)
        settled = self._keyword.settles(prompt, self._settle_words) \
            if isinstance(self._keyword, KeywordRouter) else None
        # a settled low class is scored on the models' quality, not on R̂: no encoder for it
        needs_model = settled != "low" and (
            (settled is None and not decide(kw, self._threshold)) or self._gives_success)
        semantic = self._semantic.classify(prompt) if needs_model else None
        return combine(kw, semantic, self._threshold, settled)

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
                                                  complexity=chosen.complexity,
                                                  settled=v.settled)
