"""`pickspin classify` as the CLI dispatches it: prompts from arguments or stdin, JSON out."""

from __future__ import annotations

import io
import json

import pytest

from pickspin.training.commands import classify
from tests.conftest import VALUES


class _Stdin(io.TextIOWrapper):
    """A text stream whose `.buffer` holds raw bytes, like sys.stdin."""


def _run(argv: list[str], stdin: bytes = b"") -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = classify(["--config", str(VALUES), *argv], stdin=_Stdin(io.BytesIO(stdin)),
                    stdout=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("router", ["keyword", "semantic", "hybrid"])
def test_classify_prints_one_json_line_per_prompt(semantic_router, router):
    code, lines = _run(["--router", router, "Define entropy", "Prove Fermat's little theorem"])
    assert code == 0 and len(lines) == 2
    for line in lines:
        assert line["router"] == router
        assert line["complexity"] in ("low", "medium", "high")
        assert sum(line["probabilities"].values()) == pytest.approx(1.0)


def test_classify_reads_non_utf8_stdin_without_crashing(semantic_router):
    code, lines = _run(["--router", "hybrid"], stdin=b"\xff\xfe caf\xe9 \x00 prove it")
    assert code == 0 and len(lines) == 1
    code, lines = _run(["--router", "semantic", "--lines"], stdin=b"one\n\ntwo\n")
    assert code == 0 and len(lines) == 2
