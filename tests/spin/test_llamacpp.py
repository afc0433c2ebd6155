"""The real small backend: llama-cpp-python's server with Gemma 3 270M, driven by the
official openai client (streamed completions and chat), and its start-to-first-token time."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pickspin.local.llamacpp import (
    HEALTH_PATH,
    INSTALL_HINT,
    available,
    llamacpp_command,
    start_llamacpp,
)
from pickspin.local.processes import Proc, free_port, stop, wait_http

ALIAS = "gemma-3-270m"
REQUIRED = os.environ.get("PICKSPIN_REQUIRE_LLAMACPP") == "1"  # CI installs it


def test_command_serves_the_model_under_its_alias_on_localhost(tmp_path: Path):
    model = tmp_path / "m.gguf"
    argv = llamacpp_command(8123, alias=ALIAS, n_ctx=512, threads=1, model=model)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    flags = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert flags == {"--model": str(model), "--model_alias": ALIAS, "--host": "127.0.0.1",
                     "--port": "8123", "--n_ctx": "512", "--n_threads": "1",
                     "--n_threads_batch": "1", "--chat_format": "gemma",
                     "--interrupt_requests": "false"}


def test_available_names_what_is_missing_and_how_to_install_it():
    assert available(lambda name: object(), lambda: ()) is None
    reason = available(lambda name: None if name == "llama_cpp" else object(), lambda: ())
    assert reason is not None
    assert "llama_cpp" in reason and INSTALL_HINT in reason


def test_a_native_build_is_not_available_and_the_rebuild_is_named():
    reason = available(lambda name: object(), lambda: ("AMX_INT8", "AVX512"))
    assert reason is not None
    assert "AVX512" in reason and "FORCE=1" in reason


@dataclass(frozen=True)
class Started:
    proc: Proc
    url: str
    spawned_at: float
    ready_seconds: float


@pytest.fixture(scope="module")
def llamacpp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    reason = available()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"PICKSPIN_REQUIRE_LLAMACPP=1 but {reason}")
        pytest.skip(reason)
    port = free_port()
    spawned_at = time.monotonic()
    proc = start_llamacpp("gemma-3-270m-llamacpp", port, tmp_path_factory.mktemp("logs"),
                          alias=ALIAS, n_ctx=512)
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_http(url + HEALTH_PATH, 60, alive=proc):
            raise AssertionError("llama.cpp server did not become ready:\n"
                                 + Path(proc.log).read_text(errors="replace")[-2000:])
        yield Started(proc, url, spawned_at, time.monotonic() - spawned_at)
    finally:
        stop(proc)
    assert not proc.alive()


def client(url: str):  # the official client, as a user would call the backend
    from openai import OpenAI

    return OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.mark.integration
def test_streamed_completion_arrives_token_by_token_and_first_token_is_timed(llamacpp):
    stream = client(llamacpp.url).completions.create(
        model=ALIAS, prompt="The capital of France is", max_tokens=16, temperature=0,
        stream=True)
    first_token_at = None
    pieces = []
    for chunk in stream:
        text = chunk.choices[0].text if chunk.choices else ""
        if text and first_token_at is None:
            first_token_at = time.monotonic()
        pieces.append(text)
    assert first_token_at is not None
    assert sum(1 for p in pieces if p) >= 2, pieces  # streamed, not one block
    assert "".join(pieces).strip()
    start_to_first_token = first_token_at - llamacpp.spawned_at
    print(f"\nllama.cpp gemma-3-270m: ready {llamacpp.ready_seconds:.2f} s after spawn, "
          f"first token {start_to_first_token:.2f} s after spawn")
    assert llamacpp.ready_seconds < start_to_first_token < 60


@pytest.mark.integration
def test_models_lists_the_alias_and_streamed_chat_answers(llamacpp):
    api = client(llamacpp.url)
    assert [m.id for m in api.models.list().data] == [ALIAS]
    stream = api.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16,
        temperature=0, stream=True)
    deltas = [c.choices[0].delta.content for c in stream if c.choices]
    tokens = [d for d in deltas if d]
    assert len(tokens) >= 1, deltas
    assert "".join(tokens).strip()


@pytest.mark.integration
def test_concurrent_streams_queue_instead_of_cutting_each_other_short(llamacpp):
    from concurrent.futures import ThreadPoolExecutor

    def stream(prompt: str) -> tuple[int, str | None]:
        chunks = client(llamacpp.url).completions.create(
            model=ALIAS, prompt=prompt, max_tokens=12, temperature=0, stream=True)
        texts, finish = 0, None
        for chunk in chunks:
            if chunk.choices:
                texts += bool(chunk.choices[0].text)
                finish = chunk.choices[0].finish_reason or finish
        return texts, finish

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(stream, ["Once upon a time", "The weather today is"]))
    for texts, finish in answers:
        assert finish == "length", answers  # each ran to max_tokens, none was interrupted
        assert texts >= 2
