"""The same benchmarks by name through Hugging Face `datasets`, for machines with hub access.

Each converter turns a hub row into the schema of `../shared/data/benchmarks` (id, benchmark,
split, prompt, answer, meta), formatting prompts as that folder's README says, so that hub
rows and the files give the same prompts, ids (so the same hash split) and proxy labels;
MATH is the exception, its folder ids being file paths the hub does not carry. The hub has
no per-model outcomes under these names: hub rows carry proxy labels only (real-outcome
labels come from the folder's `routing/`). `datasets` is imported only when used; offline
machines use the folder.

    pickspin train --from-hub            # needs `pip install datasets` and hub access
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pickspin.training.data import Example, proxy_examples

Row = dict[str, Any]
Loader = Callable[..., Iterable[Mapping[str, Any]]]
MC_TAIL = "Answer with the letter of the correct option."
LETTERS = "ABCDEFGHIJ"


def _options(choices: Iterable[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def _gsm8k(r: Mapping[str, Any], split: str, i: int) -> Row:
    return {"id": f"gsm8k/{split}/{i}", "benchmark": "gsm8k", "split": split,
            "prompt": r["question"], "answer": r["answer"].split("####")[-1].strip(), "meta": {}}


def _arc(difficulty: str) -> Callable[[Mapping[str, Any], str, int], Row]:
    def convert(r: Mapping[str, Any], split: str, i: int) -> Row:
        choices = r["choices"]
        prompt = f"{r['question']}\n\n{_options(choices['text'])}\n\n{MC_TAIL}"
        key = LETTERS[list(choices["label"]).index(r["answerKey"])]
        return {"id": r["id"], "benchmark": "arc", "split": split, "prompt": prompt,
                "answer": key, "meta": {"difficulty": difficulty}}
    return convert


def _mmlu_pro(r: Mapping[str, Any], split: str, i: int) -> Row:
    prompt = (f"The following is a multiple choice question about {r['category']}.\n\n"
              f"{r['question']}\n\n{_options(r['options'])}\n\n{MC_TAIL}")
    return {"id": f"mmlu_pro/{r['question_id']}", "benchmark": "mmlu_pro", "split": split,
            "prompt": prompt, "answer": r["answer"], "meta": {"category": r["category"]}}


def _math(r: Mapping[str, Any], split: str, i: int) -> Row:
    level = re.fullmatch(r"Level (\d)", str(r.get("level", "")))
    # the folder's ids are the original file paths, which the hub does not carry: these
    # keys cannot match them (see `pickspin train --from-hub`)
    return {"id": f"hub/{split}/{r['type']}/{i}", "benchmark": "math", "split": split,
            "prompt": r["problem"], "answer": "",
            "meta": {"level": int(level.group(1)) if level else None, "subject": r["type"]}}


def _hellaswag(r: Mapping[str, Any], split: str, i: int) -> Row:
    prompt = ("Choose the most plausible continuation of the following text.\n\n"
              f"{r['activity_label']}: {r['ctx']}...\n\n{_options(r['endings'])}\n\n{MC_TAIL}")
    return {"id": f"hellaswag/{split}/{r.get('ind', i)}", "benchmark": "hellaswag",
            "split": split,
            "prompt": prompt, "answer": LETTERS[int(r["label"])], "meta": {}}


def _truthfulqa(r: Mapping[str, Any], split: str, i: int) -> Row:
    return {"id": f"truthfulqa/{i}", "benchmark": "truthfulqa", "split": split,
            "prompt": r["question"],
            "answer": r["best_answer"], "meta": {"category": r.get("category")}}


def _mbpp(r: Mapping[str, Any], split: str, i: int) -> Row:
    tests = "\n".join(r["test_list"])
    prompt = (f"You are an expert Python programmer, and here is your task: {r['text']} "
              f"Your code should pass these tests:\n\n{tests}")
    return {"id": f"mbpp/{r['task_id']}", "benchmark": "mbpp", "split": split, "prompt": prompt,
            "answer": r["code"], "meta": {}}


def _humaneval(r: Mapping[str, Any], split: str, i: int) -> Row:
    prompt = ("Complete the following Python function. Return the full function "
              f"implementation.\n\n```python\n{r['prompt']}```")
    return {"id": r["task_id"], "benchmark": "humaneval", "split": split, "prompt": prompt,
            "answer": r["canonical_solution"], "meta": {}}


@dataclass(frozen=True)
class HubSource:
    path: str
    configs: tuple[str | None, ...]
    splits: tuple[str, ...]
    convert: Callable[[str | None], Callable[[Mapping[str, Any], str, int], Row]]


MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")

HUB: Mapping[str, HubSource] = {
    "gsm8k": HubSource("openai/gsm8k", ("main",), ("train", "test"), lambda c: _gsm8k),
    "arc": HubSource("allenai/ai2_arc", ("ARC-Easy", "ARC-Challenge"),
                     ("train", "validation", "test"),
                     lambda c: _arc("easy" if c == "ARC-Easy" else "challenge")),
    "mmlu_pro": HubSource("TIGER-Lab/MMLU-Pro", (None,), ("test",), lambda c: _mmlu_pro),
    "math": HubSource("EleutherAI/hendrycks_math", MATH_SUBJECTS, ("train", "test"),
                      lambda c: _math),
    "hellaswag": HubSource("Rowan/hellaswag", (None,), ("validation",), lambda c: _hellaswag),
    "truthfulqa": HubSource("truthfulqa/truthful_qa", ("generation",), ("validation",),
                            lambda c: _truthfulqa),
    "mbpp": HubSource("google-research-datasets/mbpp", ("full",), ("train", "validation",
                                                                   "test", "prompt"),
                      lambda c: _mbpp),
    "humaneval": HubSource("openai/openai_humaneval", (None,), ("test",), lambda c: _humaneval),
}


def _load_dataset() -> Loader:
    try:
        from datasets import load_dataset
    except ModuleNotFoundError:
        raise RuntimeError("reading the benchmarks from the hub needs `pip install datasets` "
                           "(and hub access); offline, use the benchmark folder (--data)") \
            from None
    return load_dataset  # type: ignore[no-any-return]


def hub_rows(benchmarks: Iterable[str] = tuple(HUB), load: Loader | None = None) -> Iterator[Row]:
    """Rows of the named benchmarks from the hub, in the benchmark folder's schema."""
    load = load or _load_dataset()
    for name in benchmarks:
        source = HUB[name]
        for config in source.configs:
            convert = source.convert(config)
            for split in source.splits:
                for i, row in enumerate(load(source.path, config, split=split)):
                    yield convert(row, split, i)


def hub_examples(benchmarks: Iterable[str] = tuple(HUB), load: Loader | None = None
                 ) -> list[Example]:
    """Proxy-labelled examples from the hub (the hub holds no per-model outcomes)."""
    examples = proxy_examples(list(hub_rows(benchmarks, load)), set())
    examples.sort(key=lambda e: e.key)
    return examples
