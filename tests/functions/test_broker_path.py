"""The broker path, end to end with real processes on real ports: a producer sends
`io.pickspin.prompt.received` (signed, naming its sink in `pickspinreplyto`) to a local
broker that routes by the chart's rendered Triggers and applies their delivery settings;
the classifier, selector, responder and telemetry run as func runs them (installed as
`function`, under func_python.cloudevent); an emulated backend answers. The producer's sink
and the dead-letter sink are recording HTTP servers."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.eventauth import Signer
from pickspin.core.events import decode
from pickspin.core.settings import Settings
from pickspin.local.broker import LocalBroker, render
from pickspin.local.processes import Proc, free_port, spawn, stop, wait_http
from tests.functions.served import Installed, local_env, serve
from tests.functions.test_served_like_func import SERVICE, one_service_config

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(24)
# small back-offs so the test sees the whole retry schedule: waits 0.2 s, then 0.4 s
DELIVERY = {"retry": 2, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}
NAMES = {"classifier": "pickspin-classifier", "selector": "pickspin-selector",
         "telemetry": "pickspin-telemetry", "responder": "pickspin-responder"}


class Recorder:
    """An HTTP sink that keeps every CloudEvent it is sent and answers `status`."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.events: list[tuple[float, CloudEvent]] = []
        self._changed = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with recorder._changed:
                    recorder.events.append((time.monotonic(),
                                            decode(dict(self.headers.items()), body)))
                    recorder._changed.notify_all()
                self.send_response(recorder.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, pick: Callable[[CloudEvent], bool], count: int = 1,
                 timeout: float = 60.0) -> list[tuple[float, CloudEvent]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [(t, e) for t, e in self.events if pick(e)]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(found)} of {count} events arrived"
                self._changed.wait(left)
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def path(installed: Installed, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    """Backend, four event functions, the sinks, and the broker from the rendered chart."""
    tmp = tmp_path_factory.mktemp("broker-path")
    logs = tmp / "logs"
    port = free_port()
    config = one_service_config(tmp / "pickspin.yaml", port)
    procs: dict[str, Proc] = {}
    sinks = {"answers": Recorder(), "failing": Recorder(status=503),
             "dead": Recorder()}
    broker: LocalBroker | None = None
    try:
        procs["backend"] = spawn(
            "backend", "replica", [sys.executable, "-m", "pickspin.emulator", "--service",
                                   SERVICE, "--port", str(port), "--config", str(config),
                                   "--cold-start-seconds", "0"],
            env={}, cwd=None, log_dir=logs, port=port)
        assert wait_http(f"http://127.0.0.1:{port}/health", 60, alive=procs["backend"])
        local = {"PICKSPIN_CONFIG": str(config), "PICKSPIN_PROMETHEUS_URL": "",
                 "PICKSPIN_INTERNAL_TOKEN": TOKEN, "PICKSPIN_METRICS_PORT": str(free_port())}
        for name in ("telemetry", "classifier", "selector", "responder"):
            procs[name] = serve(installed, name, local_env(name, local), logs)
            local["PICKSPIN_TELEMETRY_URL"] = str(procs["telemetry"].url)
        objects = render(Settings.load(config), {"broker": {"delivery": DELIVERY}})
        services = {NAMES[n]: str(procs[n].url) for n in NAMES}
        services["pickspin-dead-letters"] = sinks["dead"].url  # the chart's default sink
        broker = LocalBroker.from_objects(objects, services)
        yield {"broker": broker, "ingress": broker.serve(), "procs": procs,
               "metrics": f"http://127.0.0.1:{local['PICKSPIN_METRICS_PORT']}/metrics", **sinks}
    finally:
        if broker is not None:
            broker.close()
        for sink in sinks.values():
            sink.close()
        for proc in procs.values():
            stop(proc)


def prompt(request_id: str, sink: str | None, token: str | None = TOKEN,
           type_: str = "io.pickspin.prompt.received") -> CloudEvent:
    attributes = {"id": str(uuid.uuid4()), "type": type_, "source": "/tests/producer",
                  "datacontenttype": "application/json"}
    if sink is not None:
        attributes["pickspinreplyto"] = sink
    event = CloudEvent(attributes, {"request_id": request_id, "max_tokens": 12,
                                    "prompt": "What is the capital of France?",
                                    "route": {"router": "keyword"}})
    return Signer(token).sign(event)


def send(ingress: str, event: CloudEvent, mode: str = "binary") -> None:
    message = (to_binary_event if mode == "binary" else to_structured_event)(event)
    answer = httpx.post(ingress, content=message.body, headers=message.headers, timeout=10)
    assert answer.status_code == 202, answer.text


def request_id_is(request_id: str) -> Callable[[CloudEvent], bool]:
    def pick(event: CloudEvent) -> bool:
        data = event.get_data()
        return isinstance(data, dict) and data.get("request_id") == request_id
    return pick


def error_data(event: CloudEvent) -> dict[str, Any]:
    return json.loads(base64.b64decode(event.get_attributes()["knativeerrordata"]))


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_prompt_sent_to_the_broker_is_answered_at_the_producers_sink(path, mode):
    request_id = f"broker-{mode}"
    send(path["ingress"], prompt(request_id, path["answers"].url), mode)
    [(_, answer)] = path["answers"].wait_for(request_id_is(request_id))
    assert answer.get_type() == "io.pickspin.prompt.answered"
    Signer(TOKEN).verify(answer)  # the answer is signed with the run's token
    data = answer.get_data()
    assert data["outcome"] == "success" and data["error"] is None
    assert isinstance(data["text"], str) and data["text"].strip()
    assert data["service"] == SERVICE and data["router"] == "keyword"
    assert 0 < data["usage"]["completion_tokens"] <= 12
    # every hop went through its rendered Trigger, the responder's reply on to telemetry
    broker: LocalBroker = path["broker"]
    deadline = time.monotonic() + 10
    hops = {
        "pickspin-classifier-prompt-received", "pickspin-selector-prompt-classified",
        "pickspin-responder-route-selected", "pickspin-telemetry-inference-completed"}
    while True:
        done = {a.route for a in broker.attempts if a.status is not None
                and 200 <= a.status < 300}
        if hops <= done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert hops <= done
    asked = httpx.post(str(path["procs"]["telemetry"].url), timeout=10, **_signed_request())
    assert asked.status_code == 200
    snapshot = decode(dict(asked.headers), asked.content).get_data()
    assert snapshot["services"][SERVICE]["requests"] >= 1  # telemetry counted it
    assert not path["dead"].wait_for(request_id_is(request_id), count=0)
    # the answer counts in the gateway's demand metrics, which the ScaledObjects read
    metrics = httpx.get(path["metrics"], timeout=10).text
    assert _sample(metrics, "pickspin_requests_total", backend="vllm", outcome="success") >= 1
    assert _sample(metrics, "pickspin_pending_requests", service=SERVICE) == 0
    assert _sample(metrics, "pickspin_inflight_requests", service=SERVICE) == 0


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the one series of `name` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return float(found[0])


def _signed_request() -> dict[str, Any]:
    ask = Signer(TOKEN).sign(CloudEvent(
        {"id": "ask", "type": "io.pickspin.telemetry.requested", "source": "/tests",
         "datacontenttype": "application/json"}, {"max_age_seconds": 0}))
    message = to_structured_event(ask)
    return {"content": message.body, "headers": message.headers}


def test_a_failing_hop_is_retried_with_back_off_then_dead_lettered(path):
    """The producer's sink answers 503: the responder answers 502, which the Broker retries
    twice (0.2 s, then 0.4 s later), then sends route.selected to the dead-letter sink."""
    request_id = "broker-sink-down"
    send(path["ingress"], prompt(request_id, path["failing"].url))
    [(_, dead)] = path["dead"].wait_for(request_id_is(request_id), timeout=90)
    assert dead.get_type() == "io.pickspin.route.selected"
    attributes = dead.get_attributes()
    assert attributes["knativeerrorcode"] == "502"
    assert attributes["knativeerrordest"] == str(path["procs"]["responder"].url)
    assert error_data(dead)["error"]["code"] == "sink_failed"
    broker: LocalBroker = path["broker"]
    tries = [a for a in broker.attempts if a.route == "pickspin-responder-route-selected"
             and a.event_id == dead.get_id() and not a.dead_letter]
    assert [a.status for a in tries] == [502, 502, 502]  # 1 + retry
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential: 0.2·2⁰, 0.2·2¹ (+ the work)
    # each attempt offered the sink the answer; the responder kept the one it had made
    # (the same event, id and all) instead of asking the backend again
    offered = path["failing"].wait_for(request_id_is(request_id), count=3)
    assert len(offered) == 3 and len({e.get_id() for _, e in offered}) == 1


def test_an_event_no_trigger_matches_goes_nowhere(path):
    event = prompt("broker-unrouted", path["answers"].url, type_="io.example.unrouted")
    send(path["ingress"], event)
    time.sleep(1.0)
    broker: LocalBroker = path["broker"]
    assert event.get_id() in {e.get_id() for e in broker.unmatched}
    assert not [a for a in broker.attempts if a.event_id == event.get_id()]
    assert not path["dead"].wait_for(request_id_is("broker-unrouted"), count=0)


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_forged_prompt_is_refused_once_and_dead_lettered(path, token):
    """No signature, or one made without the run's token: the classifier answers 401, which
    Knative does not retry; the event goes to the dead letters and nothing is answered."""
    request_id = f"broker-forged-{token}"
    event = prompt(request_id, path["answers"].url, token=token)
    send(path["ingress"], event)
    [(_, dead)] = path["dead"].wait_for(request_id_is(request_id))
    assert dead.get_attributes()["knativeerrorcode"] == "401"
    assert error_data(dead)["error"]["code"] == "invalid_api_key"
    broker: LocalBroker = path["broker"]
    tries = [a for a in broker.attempts if a.event_id == event.get_id() and not a.dead_letter]
    assert [(a.route, a.status) for a in tries] == [("pickspin-classifier-prompt-received",
                                                     401)]
    assert not path["answers"].wait_for(request_id_is(request_id), count=0)


def test_a_replayed_prompt_with_another_sink_is_refused(path):
    """The signature covers the sink: changing it on a signed event breaks the signature."""
    request_id = "broker-redirected"
    event = prompt(request_id, path["answers"].url)
    moved = CloudEvent({**event.get_attributes(), "pickspinreplyto": path["failing"].url},
                       event.get_data())
    send(path["ingress"], moved)
    [(_, dead)] = path["dead"].wait_for(request_id_is(request_id))
    assert dead.get_attributes()["knativeerrorcode"] == "401"
    assert "does not match" in error_data(dead)["error"]["message"]


@pytest.mark.parametrize(("sink", "where", "why"), [
    ("ftp://example.org/x", "classifier", "absolute http(s) URL"),
    (None, "responder", "no pickspinreplyto"),
])
def test_an_unusable_sink_is_dead_lettered_with_the_reason(path, sink, where, why):
    request_id = f"broker-sink-{where}"
    send(path["ingress"], prompt(request_id, sink))
    [(_, dead)] = path["dead"].wait_for(request_id_is(request_id))
    assert dead.get_attributes()["knativeerrorcode"] == "400"
    assert dead.get_attributes()["knativeerrordest"] == str(path["procs"][where].url)
    assert why in error_data(dead)["error"]["message"]
