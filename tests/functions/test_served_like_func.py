"""Every function folder as func builds and runs it: staged, installed as the package
`function` into a target directory, started as its own process under the middleware its
func.yaml's `invoke` names, with func.yaml's envs made local. The event functions are driven
with the cloudevents SDK in both modes, the gateway with the official openai client."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cloudevents.core.bindings.http import (
    HTTPMessage,
    from_http_event,
    to_binary_event,
    to_structured_event,
)
from cloudevents.core.v1.event import CloudEvent
from openai import OpenAI

from pickspin.core.settings import Settings
from pickspin.local.processes import Proc, free_port, spawn, stop, wait_http
from tests.conftest import VALUES
from tests.functions.served import (
    FUNCTIONS,
    Installed,
    func_yaml,
    local_env,
    resolve_scaffold,
    serve,
)

pytestmark = pytest.mark.integration

SERVICE = "gemma-3-27b-vllm"  # the one backend of this run (emulated)
MODES = {"binary": to_binary_event, "structured": to_structured_event}


def one_service_config(path: Path, port: int) -> Path:
    settings = Settings.load(VALUES)
    svc = settings.service(SERVICE)
    assert svc.emulation is not None
    svc = svc.model_copy(update={"endpoint": f"http://127.0.0.1:{port}", "cold_start_seconds":
                                 0.0, "emulation": svc.emulation.model_copy(
                                     update={"cold_start_seconds": 0.0})})
    models = tuple(m for m in settings.models if m.name == svc.model)
    one = settings.model_copy(update={"services": (svc,), "models": models})
    path.write_text(yaml.safe_dump({"global": {"pickspin": one.dump()}}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def running(installed: Installed, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, Proc]]:
    """The four functions and one emulated backend, wired as Knative would wire them."""
    tmp = tmp_path_factory.mktemp("served")
    logs = tmp / "logs"
    port = free_port()
    config = one_service_config(tmp / "pickspin.yaml", port)
    procs: dict[str, Proc] = {}
    try:
        procs["backend"] = spawn(
            "backend", "replica", [sys.executable, "-m", "pickspin.emulator",
                                   "--service", SERVICE, "--port", str(port), "--config",
                                   str(config), "--cold-start-seconds", "0"],
            env={}, cwd=None, log_dir=logs, port=port)
        assert wait_http(f"http://127.0.0.1:{port}/health", 60, alive=procs["backend"])
        # no internal token: the SDK's events go unsigned (signing: tests/integration/test_auth)
        local = {"PICKSPIN_CONFIG": str(config), "PICKSPIN_PROMETHEUS_URL": "",
                 "PICKSPIN_INTERNAL_TOKEN": "", "PICKSPIN_METRICS_PORT": str(free_port())}
        for name in ("telemetry", "classifier", "selector", "responder", "gateway"):
            env = local_env(name, local)
            if name == "gateway":  # what the SinkBinding injects in a cluster
                env["K_SINK"] = str(procs["telemetry"].url)
            procs[name] = serve(installed, name, env, logs)
            local[f"PICKSPIN_{name.upper()}_URL"] = str(procs[name].url)
        yield procs
    finally:
        for proc in procs.values():
            stop(proc)


def sdk_event(type_: str, data: dict) -> CloudEvent:
    return CloudEvent({"type": type_, "source": "/tests", "datacontenttype": "application/json"},
                      data)


def post_event(url: str, event: CloudEvent, mode: str) -> httpx.Response:
    message = MODES[mode](event)
    return httpx.post(url, content=message.body, headers=message.headers, timeout=30)


def reply_of(answer: httpx.Response) -> CloudEvent:
    event = from_http_event(HTTPMessage(headers=dict(answer.headers), body=answer.content))
    assert isinstance(event, CloudEvent)
    return event


def log_of(proc: Proc) -> str:
    return Path(proc.log).read_text(errors="replace")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_scaffold_resolves_the_folder_as_function_offline(installed: Installed, name: str):
    """pip, offline against this environment, would add only the scaffold and `function`:
    the folder's name is what the scaffold asks for and every dependency it lists is met."""
    assert resolve_scaffold(installed, name) == ["function", "service"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_runs_from_its_installed_package(running, installed, name):
    line = next(li for li in log_of(running[name]).splitlines() if li.startswith("serving"))
    site = str(installed.site(name))
    _, function_file, _, pickspin_file = line.split()
    assert function_file.startswith(site) and pickspin_file.startswith(site)
    invoke = func_yaml(name)["invoke"]
    assert invoke == ("http" if name == "gateway" else "cloudevent")
    assert httpx.get(f"{running[name].url}/health/liveness").status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_classifier_answers_prompt_received(running, mode):
    answer = post_event(str(running["classifier"].url), sdk_event(
        "io.pickspin.prompt.received", {"request_id": "r1", "prompt": "Prove that there are "
                                        "infinitely many primes",
                                        "route": {"router": "keyword"}}), mode)
    assert answer.status_code == 200
    if mode == "structured":  # answered in the mode it was asked in
        assert answer.headers["content-type"].startswith("application/cloudevents+json")
    else:
        assert answer.headers["ce-type"] == "io.pickspin.prompt.classified"
    reply = reply_of(answer)
    assert reply.get_type() == "io.pickspin.prompt.classified"
    assert reply.get_data()["complexity"] == "high"


@pytest.mark.parametrize("mode", MODES)
def test_selector_answers_prompt_classified(running, mode):
    data = {"request_id": "r2", "complexity": "low", "router": "keyword", "elapsed_ms": 0.1,
            "probabilities": {"low": 0.8, "medium": 0.1, "high": 0.1}}
    answer = post_event(str(running["selector"].url),
                        sdk_event("io.pickspin.prompt.classified", data), mode)
    assert answer.status_code == 200
    reply = reply_of(answer)
    assert reply.get_type() == "io.pickspin.route.selected"
    assert reply.get_data()["chosen"]["service"] == SERVICE


@pytest.mark.parametrize("mode", MODES)
def test_telemetry_counts_completions_and_answers_ticks(running, mode):
    url = str(running["telemetry"].url)
    done = {"request_id": f"r3-{mode}", "service": SERVICE, "model": "gemma-3-27b",
            "backend": "vllm", "outcome": "success", "ttft_seconds": 0.1,
            "latency_seconds": 0.5, "completion_tokens": 3, "finished_at": time.time()}
    assert post_event(url, sdk_event("io.pickspin.inference.completed", done),
                      mode).status_code == 202
    tick = post_event(url, sdk_event("dev.knative.sources.ping", {"reason": "tick"}), mode)
    assert tick.status_code == 200
    snapshot = reply_of(tick)
    assert snapshot.get_type() == "io.pickspin.telemetry.snapshot"
    stats = snapshot.get_data()["services"][SERVICE]
    assert stats["requests"] >= 1
    assert stats["healthy"] is True  # the emulated backend answers its health probe
    asked = post_event(url, sdk_event("io.pickspin.telemetry.requested",
                                      {"max_age_seconds": 60}), mode)
    assert asked.status_code == 200  # telemetry's cached snapshot: the tick's
    assert reply_of(asked).get_data() == snapshot.get_data()


MALFORMED = {
    "plain-json": ({"content-type": "application/json"}, b'{"prompt": "hi"}'),
    "broken-structured": ({"content-type": "application/cloudevents+json"}, b"{not json"),
    "missing-type": ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t"}, b"{}"),
}


@pytest.mark.parametrize("name", ["classifier", "selector", "telemetry", "responder"])
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_event_gets_400_from_the_middleware(running, name, case):
    headers, body = MALFORMED[case]
    answer = httpx.post(str(running[name].url), content=body, headers=headers)
    assert answer.status_code == 400
    assert "expects CloudEvent" in answer.text


@pytest.mark.parametrize("name", ["classifier", "selector", "telemetry", "responder"])
@pytest.mark.parametrize("mode", MODES)
def test_bad_event_data_gets_400_from_pickspin(running, name, mode):
    type_ = {"classifier": "io.pickspin.prompt.received",
             "selector": "io.pickspin.prompt.classified",
             "telemetry": "io.pickspin.inference.completed",
             "responder": "io.pickspin.route.selected"}[name]
    answer = post_event(str(running[name].url), sdk_event(type_, {"nonsense": True}), mode)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and "invalid data" in error["message"]
    wrong = post_event(str(running[name].url), sdk_event("io.example.other", {}), mode)
    assert wrong.status_code == 400
    assert "unexpected event type" in wrong.json()["error"]["message"]
    assert "Traceback" not in log_of(running[name])


def test_the_gateway_serves_the_openai_client_through_the_event_functions(running):
    client = OpenAI(base_url=f"{running['gateway'].url}/v1", api_key="unused", max_retries=0,
                    timeout=30)
    assert "pickspin/auto" in {m.id for m in client.models.list()}
    raw = client.chat.completions.with_raw_response.create(
        model="pickspin/auto", messages=[{"role": "user", "content": "List three colours"}],
        max_tokens=8)
    assert raw.headers["x-pickspin-backend"] == "vllm"  # routed by classifier and selector
    assert raw.headers["x-pickspin-router"] == Settings.load(VALUES).routing.mode.value
    assert raw.parse().choices[0].message.content
    stream = client.chat.completions.create(
        model="pickspin/auto", messages=[{"role": "user", "content": "Define entropy"}],
        max_tokens=8, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    for name in FUNCTIONS:
        assert "Traceback" not in log_of(running[name]), name
