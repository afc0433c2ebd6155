"""Complexity routers: a prompt in, class probabilities over (low, medium, high) out.

Every router returns the same `Classification`, so R̂(p, L) = Σ_k p_k · quality(L, k)
(`pickspin.core.scoring.relevance`) treats keyword rules and the DistilBERT model alike.
Routers are looked up by name (`RouterName`) in a registry, as RouteLLM does.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pickspin.core.settings import COMPLEXITY_CLASSES, Keywords, RouterName

# Prompts longer than this are classified on their head; nothing downstream needs more.
MAX_PROMPT_CHARS = 100_000


@dataclass(frozen=True)
class Classification:
    """The predicted complexity of one prompt."""

    complexity: str
    probabilities: Mapping[str, float]
    router: str
    elapsed_ms: float = 0.0
    truncated: bool = False
    # Calibrated P(the tier's model answers well) per tier (small, medium, large), from a
    # router trained on real outcomes; empty when the router has no such estimate (keyword).
    success: Mapping[str, float] = field(default_factory=dict)
    # the hybrid's short-prompt rule settled the class (`KeywordRouter.settles`): selection
    # then applies the profile's `settledTiers` floor instead of its relevance bound
    settled: bool = False

    @classmethod
    def from_probabilities(
        cls, probs: Mapping[str, float], router: str, *, truncated: bool = False,
        success: Mapping[str, float] | None = None, complexity: str | None = None,
        settled: bool = False,
    ) -> Classification:
        """Normalised class probabilities; the class is `complexity` if given, else the
        most probable one."""
        total = sum(probs.values()) or 1.0
        norm = {k: float(probs.get(k, 0.0)) / total for k in COMPLEXITY_CLASSES}
        best = complexity or max(COMPLEXITY_CLASSES, key=lambda k: norm[k])
        return cls(best, norm, router, truncated=truncated, success=dict(success or {}),
                   settled=settled)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.complexity]


class Router(ABC):
    """One abstract method: prompt text → class probabilities."""

    name: str

    @abstractmethod
    def classify(self, prompt: str) -> Classification: ...

    def timed(self, prompt: str) -> Classification:
        """`classify`, with the prompt bounded and the elapsed time filled in."""
        truncated = len(prompt) > MAX_PROMPT_CHARS
        start = time.perf_counter()
        result = self.classify(prompt[:MAX_PROMPT_CHARS])
        elapsed = (time.perf_counter() - start) * 1000
        return replace(result, elapsed_ms=elapsed, truncated=truncated or result.truncated)


# Words after leading chit-chat that are still small talk when they hold no keyword.
SMALL_TALK_WORDS = 4

# What may precede a prompt's opening word (quotes, brackets, list marks).
_OPENING = "\"'“‘([{-*#>• \t\n"

# A keyword verdict with hits on one side only: the class probabilities it gives.
ONE_SIDED: dict[str, dict[str, float]] = {
    "low": {"low": 0.85, "medium": 0.12, "high": 0.03},
    "high": {"low": 0.03, "medium": 0.12, "high": 0.85},
}


class KeywordRouter(Router):
    """Paper Sec. 3.2 rules: "sum", "list", "define"… → low; "prove", "derive"… → high.

    Hits on each side are counted; the side with more hits gets most of the mass, and a
    prompt with no hits is medium. A decisive verdict (hits on one side only) is confident,
    a mixed one is not, which is what the hybrid router uses to hand over to the model.

    >>> router = KeywordRouter(Keywords(low=("define",), high=("prove",)))
    >>> router.classify("Define entropy").complexity
    'low'
    """

    name = RouterName.KEYWORD.value

    def __init__(self, keywords: Keywords) -> None:
        self._low = _pattern(keywords.low)
        self._high = _pattern(keywords.high)
        chat = "|".join(re.escape(w.lower()) for w in sorted(keywords.chat, key=len,
                                                                 reverse=True))
        # leading chit-chat and the punctuation after it ("Hi, can you …" → "…")
        self._opener = re.compile(rf"^(?:(?:{chat})\b[\s\W]*)+", re.IGNORECASE) if chat \
            else re.compile(r"(?!)")

    def hits(self, prompt: str) -> tuple[int, int]:
        return len(self._low.findall(prompt)), len(self._high.findall(prompt))

    def settles(self, prompt: str, max_words: int) -> str | None:
        """The short-prompt rule: the class of a prompt of at most `max_words` words, else
        None. Leading greetings and polite openers (`Keywords.chat`: "hi", "thanks", "can
        you", …) are set aside; what is left must open with a keyword and hold keywords of
        that side only (low or high). Nothing left but chit-chat, or chit-chat followed by at
        most `SMALL_TALK_WORDS` words and no keyword, is low. Longer prompts, mixed ones,
        and those whose keyword comes only further in ("Write a function to sort a list")
        are left to the model. What people type as a quick request ("Define the word
        photosynthesis", "Prove that …", "hi") is far from the benchmark rows the model
        learned on, which are longer.

        >>> rules = KeywordRouter(Keywords(low=("define",), high=("prove",), chat=("hi",)))
        >>> [rules.settles(p, 12) for p in ("hi", "Hi! Prove it", "Say hi", "Define x")]
        ['low', 'high', None, 'low']
        """
        text = prompt.strip().lstrip(_OPENING)
        if max_words <= 0 or not 0 < len(text.split()) <= max_words:
            return None
        rest = self._opener.sub("", text)
        if not rest:
            return "low"
        low, high = self.hits(rest)
        if high and not low and self._high.match(rest):
            return "high"
        if low and not high and self._low.match(rest):
            return "low"
        if not low and not high and rest != text and len(rest.split()) <= SMALL_TALK_WORDS:
            return "low"  # a greeting and a few words of small talk ("Hi, who are you?")
        return None

    def classify(self, prompt: str) -> Classification:
        low, high = self.hits(prompt)
        if low == high == 0:
            probs = {"low": 0.2, "medium": 0.6, "high": 0.2}
        elif high == 0:
            probs = dict(ONE_SIDED["low"])
        elif low == 0:
            probs = dict(ONE_SIDED["high"])
        else:  # both sides hit: lean towards the larger count, but stay unsure
            share = high / (low + high)
            probs = {"low": 0.4 * (1 - share), "medium": 0.6, "high": 0.4 * share}
        return Classification.from_probabilities(probs, self.name)


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # A word boundary at the start only, so "optimi" matches optimise/optimization.
    alternatives = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})", re.IGNORECASE) if words else re.compile(r"(?!)")


class RouterRegistry:
    """Name → router. Routers that fail to load are recorded with the reason, not hidden."""

    def __init__(self) -> None:
        self._routers: dict[str, Router] = {}
        self._unavailable: dict[str, str] = {}

    def add(self, router: Router) -> None:
        self._routers[router.name] = router

    def add_failed(self, name: str, reason: str) -> None:
        self._unavailable[name] = reason

    def get(self, name: str) -> Router:
        if name in self._routers:
            return self._routers[name]
        if name in self._unavailable:
            raise LookupError(f"router {name!r} is unavailable: {self._unavailable[name]}")
        raise LookupError(
            f"unknown router {name!r}; choose one of {[r.value for r in RouterName]}"
        )

    @property
    def available(self) -> list[str]:
        return sorted(self._routers)

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self._unavailable)
