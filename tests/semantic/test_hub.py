"""The hub path: benchmarks by name through `datasets`, converted to the folder's schema.

A fake `load_dataset` stands in for the hub (none is reachable here); its rows have the
fields of the real datasets' cards."""

from __future__ import annotations

from typing import Any

import pytest

from pickspin.training.hub import HUB, hub_examples, hub_rows

FAKE: dict[str, dict[str, Any]] = {
    "openai/gsm8k": {"question": "Tom has 3 apples and buys 2. How many?",
                     "answer": "3 + 2 = 5\n#### 5"},
    "allenai/ai2_arc": {"id": "Mercury_1", "question": "Which is a mammal?",
                        "choices": {"text": ["shark", "dolphin", "trout"],
                                    "label": ["1", "2", "3"]}, "answerKey": "2"},
    "TIGER-Lab/MMLU-Pro": {"question_id": 70, "question": "What is 2+2?", "category": "math",
                           "options": ["3", "4"], "answer": "B"},
    "EleutherAI/hendrycks_math": {"problem": "Solve x+1=2.", "level": "Level 4",
                                  "type": "Algebra", "solution": "\\boxed{1}"},
    "Rowan/hellaswag": {"ind": 24, "activity_label": "Baking", "ctx": "She opens the oven",
                        "endings": ["a", "b", "c", "d"], "label": "2"},
    "truthfulqa/truthful_qa": {"question": "What happens if you swallow gum?",
                               "best_answer": "It passes through you", "category": "Health"},
    "google-research-datasets/mbpp": {"task_id": 11, "text": "Write a function to add.",
                                      "code": "def add(a, b): return a + b",
                                      "test_list": ["assert add(1, 2) == 3"]},
    "openai/openai_humaneval": {"task_id": "HumanEval/0", "prompt": "def f():\n",
                                "canonical_solution": "    return 1\n"},
}


def fake_load(path: str, config: str | None, *, split: str) -> list[dict[str, Any]]:
    return [FAKE[path]]


def test_every_benchmark_of_the_folder_has_a_hub_source():
    from pickspin.training.data import BENCHMARKS

    assert set(HUB) == set(BENCHMARKS)


def test_hub_rows_follow_the_folder_schema_and_prompt_format():
    rows = {r["benchmark"] + ":" + r["split"]: r for r in hub_rows(load=fake_load)}
    arc = rows["arc:test"]
    assert arc["prompt"].endswith("A. shark\nB. dolphin\nC. trout\n\n"
                                  "Answer with the letter of the correct option.")
    assert arc["answer"] == "B" and arc["meta"]["difficulty"] in ("easy", "challenge")
    assert rows["gsm8k:test"]["answer"] == "5"
    # ids as in the benchmark folder, so the hash split puts a prompt on the same side
    assert rows["mmlu_pro:test"]["id"] == "mmlu_pro/70"
    assert rows["gsm8k:test"]["id"] == "gsm8k/test/0"
    assert rows["hellaswag:validation"]["id"] == "hellaswag/validation/24"
    assert rows["mbpp:test"]["id"] == "mbpp/11"
    assert rows["truthfulqa:validation"]["id"] == "truthfulqa/0"
    assert rows["math:test"]["meta"]["level"] == 4
    assert rows["hellaswag:validation"]["answer"] == "C"
    assert rows["mbpp:test"]["prompt"].startswith("You are an expert Python programmer")
    assert rows["humaneval:test"]["prompt"].startswith("Complete the following Python function")
    for row in rows.values():
        assert set(row) == {"id", "benchmark", "split", "prompt", "answer", "meta"}


def test_hub_examples_get_the_documented_proxy_labels():
    examples = {e.benchmark: e for e in hub_examples(["math", "arc", "humaneval"],
                                                     load=fake_load)}
    assert examples["math"].label == "high"  # level 4
    assert examples["humaneval"].label == "high"
    assert examples["arc"].label in ("low", "medium")
    assert all(e.outcome is None for e in examples.values())


def test_without_datasets_installed_the_error_says_what_to_do():
    try:
        import datasets  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(RuntimeError, match="pip install datasets"):
            list(hub_rows(["gsm8k"]))
    else:
        pytest.skip("datasets is installed here: the error path cannot be shown")
