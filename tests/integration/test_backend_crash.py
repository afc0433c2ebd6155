"""A backend process that dies while answering is reported as the crash it is (its signal),
by the gateway's error and log and by `pickspin status`, not as a protocol error; the local
scaler replaces it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from openai import OpenAI

from pickspin.cli import main as cli
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, services, up
from tests.conftest import VALUES
from tests.integration.conftest import log_of

pytestmark = pytest.mark.integration

CRASHING = "gemma-3-27b-vllm"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One emulated service whose engine segfaults before its first token (fault injection
    `crashAfterTokens: 0`), kept warm by the scaler."""
    state = tmp_path_factory.mktemp("crash")
    data = quick_spin_values(yaml.safe_load(VALUES.read_text()), (CRASHING,),
                             warm_pool={"small": 1})
    data["global"]["pickspin"]["services"][0]["emulation"].update(
        crashAfterTokens=0, ttftMsMedian=20, ttftMsP99=40)
    values = Path(state) / "values.yaml"
    values.write_text(yaml.safe_dump(data))
    running = up(str(values), Path(state) / "run", tick_seconds=0.5, timeout=120, log=False)
    try:
        yield running
    finally:
        down(Path(state) / "run")


def test_a_backend_killed_by_a_signal_while_answering_is_reported_as_a_crash(stack, capsys):
    client = OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="gemma-3-27b", max_tokens=4,
                                       messages=[{"role": "user", "content": "Name a fruit"}])
    assert failed.value.status_code == 502
    message = failed.value.body["message"]  # type: ignore[index]
    assert f"{CRASHING}=crashed: killed by SIGSEGV" in message
    assert "RemoteProtocolError" not in message
    assert "crashed while answering: killed by SIGSEGV" in log_of(stack, "gateway")

    state = services(stack.state_dir)[CRASHING]
    assert state["restarts"] >= 1
    assert state["last_crash"]["signal"] == "SIGSEGV"  # type: ignore[index]
    # and `pickspin status` prints it
    assert cli(["status", "--state-dir", str(stack.state_dir)]) == 0
    out = capsys.readouterr().out
    assert "killed by SIGSEGV" in out and CRASHING in out


def test_the_crashed_replica_is_replaced(stack):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = services(stack.state_dir)[CRASHING]
        if state["ready"] == 1:
            break
        time.sleep(0.2)
    assert state["ready"] == 1 and state["restarts"] >= 1
