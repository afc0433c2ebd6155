"""Every router's output over rows of examples: class probabilities, classes and success
estimates (keyword rules, the semantic router batched, the hybrid of both), for
`pickspin replay` and `pickspin simulate`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pickspin.core.routers import ONE_SIDED, Classification, KeywordRouter, Router
from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS
from pickspin.semantic.hybrid import decide
from pickspin.semantic.runtime import SemanticRouter
from pickspin.training.data import Example

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RouterOutput:
    """One router over rows: class probabilities, classes, and success per tier (then per
    model with its own head, as `names` says; NaN where the router gave none, as keyword
    rules)."""

    probs: np.ndarray
    classes: list[str]
    success: np.ndarray
    names: tuple[str, ...] = TIERS
    # per row: the hybrid's short-prompt rule settled the class (None: no row was)
    settled: tuple[bool, ...] | None = None

    def relevance(self, quality: np.ndarray) -> np.ndarray:
        """n × tiers R̂: the success estimate where there is one, else probs · quality."""
        expected = self.probs @ quality.T
        tiers = self.success[:, : len(TIERS)]
        return np.where(np.isnan(tiers), expected, tiers)

    def take(self, idx: Sequence[int]) -> RouterOutput:
        return RouterOutput(self.probs[list(idx)], [self.classes[i] for i in idx],
                            self.success[list(idx)], self.names,
                            None if self.settled is None
                            else tuple(self.settled[i] for i in idx))


def semantic_outputs(rows: Sequence[Example], semantic: Router, progress: Progress,
                     batch: int = 64) -> RouterOutput:
    """The semantic router over `rows`, batched (success heads or the DistilBERT classifier)."""
    from pickspin.semantic.success import SuccessRouter

    probs, classes, success = [], [], []
    names = semantic.config.outputs if isinstance(semantic, SuccessRouter) else TIERS
    for i in range(0, len(rows), batch):
        texts = [r.text for r in rows[i : i + batch]]
        if isinstance(semantic, SuccessRouter):
            s, _ = semantic.success(texts)
            for row in s:
                c = semantic.from_success(row)
                probs.append([c.probabilities[k] for k in COMPLEXITY_CLASSES])
                classes.append(c.complexity)
                success.append(row)
        elif isinstance(semantic, SemanticRouter):
            p, _ = semantic.probabilities(texts)
            probs.extend(p.tolist())
            classes.extend(predicted(p))
            success.extend([[np.nan] * len(TIERS)] * len(texts))
        else:
            for t in texts:
                c = semantic.classify(t)
                probs.append([c.probabilities[k] for k in COMPLEXITY_CLASSES])
                classes.append(c.complexity)
                success.append([c.success.get(k, np.nan) for k in TIERS])
        if (i // batch) % 20 == 0:
            progress(f"semantic: {min(i + batch, len(rows))}/{len(rows)} rows")
    return RouterOutput(np.array(probs).reshape(-1, 3), classes,
                        np.array(success, dtype=float).reshape(-1, len(names)), names)


def all_outputs(rows: Sequence[Example], semantic: Router, keyword: KeywordRouter,
                threshold: float, progress: Progress, settle_words: int = 0
                ) -> tuple[dict[str, RouterOutput], float]:
    """Every router's output over `rows`, and the share of rows hybrid left to keywords
    (its threshold or its short-prompt rule, `settle_words`)."""
    sem = semantic_outputs(rows, semantic, progress)
    kw = [keyword.classify(r.text) for r in rows]
    kw_out = RouterOutput(np.array([[k.probabilities[c] for c in COMPLEXITY_CLASSES]
                                    for k in kw]).reshape(-1, 3),
                          [k.complexity for k in kw], np.full((len(rows), 3), np.nan))
    settles = settled_classes(rows, keyword, settle_words)
    hy = hybrid_of(kw, sem, threshold, settles)
    share = float(np.mean([decide(k, threshold) or s is not None
                           for k, s in zip(kw, settles, strict=True)])) if kw else 0.0
    return {"keyword": kw_out, "semantic": sem, "hybrid": hy}, share


def settled_classes(rows: Sequence[Example], keyword: KeywordRouter, settle_words: int
                    ) -> list[str | None]:
    """The class the short-prompt rule settles per row (None: not settled)."""
    return [keyword.settles(r.text, settle_words) for r in rows]


def hybrid_of(keyword: Sequence[Classification], sem: RouterOutput, threshold: float,
              settles: Sequence[str | None] | None = None) -> RouterOutput:
    """The hybrid's output from the two routers' outputs and the classes the short-prompt
    rule settled (pure)."""
    probs, classes = sem.probs.copy(), list(sem.classes)
    settled = [False] * len(classes)
    for i, k in enumerate(keyword):
        fixed = settles[i] if settles is not None else None
        if fixed is not None:  # the class is settled; success stays the model's
            probs[i] = [ONE_SIDED[fixed][c] for c in COMPLEXITY_CLASSES]
            classes[i] = fixed
            settled[i] = True
        elif decide(k, threshold):  # the class follows the keywords; success the model's
            probs[i] = [k.probabilities[c] for c in COMPLEXITY_CLASSES]
            classes[i] = k.complexity
    return RouterOutput(probs, classes, sem.success.copy(), sem.names, tuple(settled))


def predicted(probs: np.ndarray) -> list[str]:
    return [COMPLEXITY_CLASSES[i] for i in probs.argmax(axis=1)]
