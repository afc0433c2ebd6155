"""Tier maps and label rules: which labelled model stands in for each tier, and how a prompt
gets its complexity class.

A prompt's class is the cheapest tier whose stand-in answered it correctly (none correct →
high), wherever real per-model outcomes exist (`routing/` of the benchmark folder). Elsewhere
a documented proxy gives the class (MATH level, ARC Easy vs Challenge, task family).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pickspin.core.settings import COMPLEXITY_CLASSES, TIERS

# A score at or above this counts as a correct answer. Scores are 1/0 for MMLU-Pro and
# RouteLLM, a fraction of correct samples for RouterDC generation tasks, [0, 1] RouterBench.
CORRECT_AT = 0.5


@dataclass(frozen=True)
class TierMap:
    """Which labelled model stands in for the small, medium and large tier in one source."""

    source: str
    small: str
    medium: str
    large: str
    note: str = ""

    @property
    def models(self) -> tuple[str, str, str]:
        return (self.small, self.medium, self.large)


# The labelled sets with an outcome for all three tiers. The Llama-3 *Instruct* 8B/70B runs
# are not in the MMLU-Pro label set; the Llama-3.1 Instruct runs are the closest stand-ins.
TIER_MAPS: Mapping[str, TierMap] = {
    "mmlu_pro": TierMap(
        "mmlu_pro", "Meta-Llama-3_1-8B-Instruct", "Meta-Llama-3_1-70B-Instruct",
        "gemini-1.5-pro-002",
        "MMLU-Pro 5-shot CoT (TIGER-AI-Lab): an 8B, a 70B and the strongest of 29 models",
    ),
    "routerbench": TierMap(
        "routerbench", "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat",
        "gpt-4-1106-preview",
        "RouterBench 0-shot (ARC-Challenge, MBPP, Winogrande): a 7B, a mixture of 8×7B, GPT-4",
    ),
    "gsm8k": TierMap(
        "gsm8k", "meta-llama/Meta-Llama-3-8B", "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "gpt-4-1106-preview",
        "GSM8K test: Llama-3-8B from RouterDC (≥ half of samples correct), Mixtral-8x7B-"
        "Instruct and GPT-4 from RouteLLM, joined on the GSM8K id",
    ),
}

# Configured models whose stand-in is not their tier's model in a source. Two large models
# are configured: the strongest (deepseek-r1) is represented by the tier's model, the other by
# the second-strongest labelled model. Gemma 3 270M is far below every labelled model; the
# weakest MMLU-Pro run (Llama-2-7B, 18 %) stands in, so its figures are an upper bound, and
# the other sources (no model that weak) are left out (None).
STAND_IN_OVERRIDES: Mapping[str, Mapping[str, str | None]] = {
    "qwen-3-235b": {"mmlu_pro": "gemini-1.5-flash-002", "routerbench": "zero-one-ai/Yi-34B-Chat"},
    "gemma-3-270m": {"mmlu_pro": "Llama-2-7b-hf", "routerbench": None, "gsm8k": None},
}


def stand_in(model: str, tier: str, source: str) -> str | None:
    """The labelled model that represents configured `model` (of `tier`) in `source`."""
    overrides = STAND_IN_OVERRIDES.get(model, {})
    if source in overrides:
        return overrides[source]
    return TIER_MAPS[source].models[TIERS.index(tier)]


def represented_by_tier(model: str) -> bool:
    """True when the tier's own stand-ins represent `model` (it has no override)."""
    return model not in STAND_IN_OVERRIDES


def label_from_outcomes(correct: Sequence[bool]) -> str:
    """The cheapest tier that answered correctly → its class; none correct → high."""
    for tier_index, ok in enumerate(correct):
        if ok:
            return COMPLEXITY_CLASSES[tier_index]
    return "high"


def is_correct(score: float | None) -> bool | None:
    return None if score is None else score >= CORRECT_AT


# ---- proxies for prompts without per-model outcomes -----------------------------------------
PROXY_RULES: Mapping[str, str] = {
    "math": "MATH level 1–2 → low, 3 → medium, 4–5 → high",
    "arc": "ARC-Easy → low, ARC-Challenge → medium",
    "hellaswag": "task family: commonsense continuation → low",
    "truthfulqa": "task family: open factual question with misconceptions → medium",
    "gsm8k": "task family: grade-school multi-step arithmetic → medium",
    "mbpp": "task family: short Python function from a description → medium",
    "humaneval": "task family: complete a Python function from signature + docstring → high",
}

# Proxy rows kept per benchmark (a deterministic, hash-ordered subset), so no one task family
# drowns the rows with real outcomes.
PROXY_CAPS: Mapping[str, int] = {
    "math": 5000, "arc": 2500, "hellaswag": 2500, "truthfulqa": 817, "gsm8k": 2500,
    "mbpp": 974, "humaneval": 164,
}


def proxy_label(benchmark: str, meta: Mapping[str, object]) -> str | None:
    """The documented proxy class of a benchmark row, or None when there is none."""
    if benchmark == "math":
        level = meta.get("level")
        if not isinstance(level, int):
            return None
        return "low" if level <= 2 else "medium" if level == 3 else "high"
    if benchmark == "arc":
        return "low" if meta.get("difficulty") == "easy" else "medium"
    fixed = {"hellaswag": "low", "truthfulqa": "medium", "gsm8k": "medium", "mbpp": "medium",
             "humaneval": "high"}
    return fixed.get(benchmark)
