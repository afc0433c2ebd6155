"""A backend that refuses connections and one that answers 500 are skipped for the
next-best candidate; the client gets a normal answer and `x-pickspin-fallback` says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from openai import OpenAI

from pickspin.core.settings import Priors, Settings, StrategyName
from pickspin.emulator.server import emulator_command
from pickspin.local.plan import start_functions
from pickspin.local.processes import Proc, free_port, spawn, stop
from pickspin.local.stack import wait_ready
from tests.conftest import VALUES

pytestmark = pytest.mark.integration

REFUSING, FAILING, HEALTHY = "gemma-3-27b-vllm", "gemma-3-27b-tgi", "gemma-3-27b-trtllm"


def failover_settings(ports: dict[str, int]) -> Settings:
    """Gemma only, ranked by latency so that the broken services are tried first."""
    base = Settings.load(VALUES)
    order = {REFUSING: 0.5, FAILING: 1.0, HEALTHY: 2.0}
    services = tuple(
        s.model_copy(update={"endpoint": f"http://127.0.0.1:{ports[s.name]}",
                             "priors": Priors(latency_seconds=order[s.name], ttft_seconds=0.05)})
        for s in base.services if s.name in order)
    routing = base.routing.model_copy(update={"strategy": StrategyName.LATENCY})
    return base.model_copy(update={"services": services, "models": (base.model("gemma-3-27b"),),
                                   "routing": routing})


@pytest.fixture(scope="module")
def broken_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("failover")
    ports = {name: free_port() for name in (REFUSING, FAILING, HEALTHY)}
    config = Path(state) / "pickspin.yaml"
    config.write_text(yaml.safe_dump({"global": {"pickspin": failover_settings(ports).dump()}}))
    logs = Path(state) / "logs"

    def backend(name: str, **overrides: float) -> Proc:
        return spawn(name, "backend", emulator_command(name, ports[name], config, **overrides),
                     env={}, cwd=None, log_dir=logs, port=ports[name], health="/health")

    # all three healthy at start (the 500 one fails completions only), so the selector's
    # start-up snapshot sees them healthy; no telemetry ticks afterwards, and the selector
    # never pulls a newer snapshot (PICKSPIN_SNAPSHOT_MAX_AGE=inf)
    refusing = backend(REFUSING)
    procs: list[Proc] = [backend(FAILING, error_rate=1.0), backend(HEALTHY)]
    try:
        with pytest.MonkeyPatch.context() as env:  # the functions inherit this environment
            env.setenv("PICKSPIN_SNAPSHOT_MAX_AGE", "inf")
            procs += start_functions(config, logs, tick_seconds=3600)
        wait_ready([refusing, *procs], timeout=60)
        stop(refusing)  # from now on its port refuses connections; only the gateway finds out
        gateway = next(p for p in procs if p.name == "gateway")
        yield f"{gateway.url}/v1"
    finally:
        for p in (refusing, *procs):
            stop(p)


def test_refused_and_500_backends_are_skipped(broken_stack):
    client = OpenAI(base_url=broken_stack, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="pickspin/auto", max_tokens=4, messages=[{"role": "user", "content": "Define pi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert raw.headers["x-pickspin-backend"] == "trtllm"
    assert raw.headers["x-pickspin-fallback"] == f"{REFUSING}=refused,{FAILING}=http-500"


def test_streamed_requests_fail_over_before_the_first_token(broken_stack):
    client = OpenAI(base_url=broken_stack, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="pickspin/auto", max_tokens=4, stream=True,
        messages=[{"role": "user", "content": "Define pi"}])
    assert raw.headers["x-pickspin-fallback"] == f"{REFUSING}=refused,{FAILING}=http-500"
    pieces = [c.choices[0].delta.content for c in raw.parse()
              if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 4
