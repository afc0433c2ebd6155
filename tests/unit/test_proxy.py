import json

import httpx

from pickspin.apps.gateway.proxy import BackendProxy
from pickspin.core.events import Candidate, ScoreBreakdown

BREAKDOWN = ScoreBreakdown(relevance=1, latency=1, cost=1, latency_seconds=1,
                           cost_per_query=0, score=1)


def candidate(name: str) -> Candidate:
    return Candidate(service=name, model="m", backend="b", endpoint=f"http://{name}",
                     breakdown=BREAKDOWN)


def proxy(script: dict[str, list]) -> tuple[BackendProxy, list[str]]:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        step = script[request.url.host].pop(0)
        if isinstance(step, type) and issubclass(step, Exception):
            raise step("scripted", request=request)
        return httpx.Response(step, json={"usage": {"completion_tokens": 1}})

    return BackendProxy(httpx.Client(transport=httpx.MockTransport(handler))), calls


def test_a_connection_dropped_before_any_answer_is_retried_once_on_the_same_backend():
    p, calls = proxy({"a": [httpx.RemoteProtocolError, 200]})
    up = p.forward("chat", {"messages": []}, [candidate("a")], 0.0)
    assert up.status == 200 and up.fallback == [] and calls == ["a", "a"]
    assert json.loads(up.body)["usage"]["completion_tokens"] == 1


def test_refused_and_5xx_move_on_to_the_next_candidate_without_retrying():
    p, calls = proxy({"a": [httpx.ConnectError], "b": [503], "c": [200]})
    up = p.forward("chat", {}, [candidate("a"), candidate("b"), candidate("c")], 0.0)
    assert up.candidate.service == "c"
    assert up.fallback == ["a=refused", "b=http-503"]
    assert calls == ["a", "b", "c"]


def test_inflight_is_counted_up_and_back_down_for_failed_attempts():
    p, _ = proxy({"a": [500], "b": [200]})
    seen: list[tuple[str, int]] = []
    p.forward("chat", {}, [candidate("a"), candidate("b")], 0.0,
              lambda svc, d: seen.append((svc, d)))
    assert seen == [("a", 1), ("a", -1), ("b", 1)]
