"""The first request to a real llama.cpp backend at zero replicas: the scaler starts the
process, the gateway holds the request until it is ready, and says so."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from openai import OpenAI

from pickspin.local import llamacpp
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up
from tests.conftest import VALUES

# CI installs the backend and sets PICKSPIN_REQUIRE_LLAMACPP=1: there the test runs or fails
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("PICKSPIN_REQUIRE_LLAMACPP") != "1"
                       and llamacpp.available() is not None,
                       reason=str(llamacpp.available())),
]

REAL, WARM = "gemma-3-270m-llamacpp", "llama-3-70b-vllm"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("spin-llamacpp")
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (REAL, WARM),
                             warm_pool={"medium": 1}, target_utilization=1.0)
    data["global"]["pickspin"]["profiles"]["quality"]["scaling"]["coldStart"] = "hold"
    values = Path(state) / "values.yaml"
    values.write_text(yaml.safe_dump(data))
    running = up(str(values), Path(state) / "run", tick_seconds=0.5, log=False)
    try:
        yield running
    finally:
        down(Path(state) / "run")


def scaler(stack: Stack) -> dict:
    url = next(p.url for p in stack.procs if p.name == "scaler")
    return httpx.get(f"{url}/replicas", timeout=5).json()


def test_first_request_to_a_scaled_to_zero_llamacpp_backend(stack):
    assert scaler(stack)[REAL]["replicas"] == 0
    time.sleep(1.5)  # a telemetry tick tells the selector the backend is cold
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=120)
    start = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="gemma-3-270m", max_tokens=8, extra_headers={"x-pickspin-profile": "quality"},
        messages=[{"role": "user", "content": "Name a colour."}])
    elapsed = time.monotonic() - start
    answer = raw.parse()
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert raw.headers["x-pickspin-backend"] == "llamacpp"
    assert raw.headers["x-pickspin-cold-start"] == "true"
    assert raw.headers["x-pickspin-cold-action"] == "hold"
    waited = float(raw.headers["x-pickspin-cold-start-ms"]) / 1000
    assert 0 < waited < elapsed
    # the replica the scaler started is the real server, not the emulator
    pid = scaler(stack)[REAL]["pids"][0]
    assert b"llama_cpp.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    print(f"llama.cpp cold start held the request {waited:.2f} s; answered in {elapsed:.2f} s")


def test_what_is_emulated_says_so_and_the_first_answer_is_the_real_models(stack, capsys):
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=120)
    owners = {m.id: m.owned_by for m in client.models.list()}
    assert owners["gemma-3-270m"] == "pickspin"  # the real llama.cpp server
    assert owners["llama-3-70b"] == "pickspin-emulated"
    raw = client.chat.completions.with_raw_response.create(
        model="llama-3-70b", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    assert raw.headers["x-pickspin-emulated"] == "true"
    from pickspin.local import first_request

    assert first_request.main(["--state-dir", str(stack.state_dir)]) == 0
    out = capsys.readouterr().out
    first = out.split("answered by", 1)[1].splitlines()[0]
    assert "gemma-3-270m on llamacpp (a real model)" in first
    from pickspin.cli import main as cli

    assert cli(["status", "--state-dir", str(stack.state_dir)]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()
            if line.startswith(("gemma-3-270m-llamacpp", "llama-3-70b-vllm"))}
    assert rows == {REAL: "real", WARM: "emulated"}
