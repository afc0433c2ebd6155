import pytest

from pickspin.core.events import InferenceCompleted
from pickspin.core.telemetry import Probe, Window, quantile


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def done(at: float, latency: float, outcome: str = "success") -> InferenceCompleted:
    return InferenceCompleted(request_id="r", service="gemma-3-27b-vllm", model="gemma-3-27b",
                              backend="vllm", outcome=outcome, ttft_seconds=latency / 10,
                              latency_seconds=latency, completion_tokens=10, finished_at=at)


def test_window_statistics_and_expiry(settings):
    clock = Clock()
    window = Window(settings, seconds=60, clock=clock)
    for i in range(1, 11):
        window.add(done(clock.now - 1, float(i)))
    window.add(done(clock.now - 1, 99.0, outcome="error"))
    window.add(done(clock.now - 120, 500.0))  # outside the window
    stats = window.snapshot({"gemma-3-27b-vllm": Probe(replicas=2)}).services["gemma-3-27b-vllm"]
    assert stats.requests == 11
    assert stats.rate_per_second == pytest.approx(11 / 60)
    assert stats.latency_seconds == pytest.approx(5.5)
    assert stats.latency_p50_seconds == 5.0
    assert stats.latency_p99_seconds == 10.0
    assert stats.success_ratio == pytest.approx(10 / 11)
    assert stats.replicas == 2
    assert stats.cost_per_query > 0
    clock.now += 61
    assert window.snapshot().services["gemma-3-27b-vllm"].requests == 0


def test_quantile_nearest_rank():
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0


def test_a_slow_health_answer_must_repeat_before_a_backend_counts_unhealthy(settings):
    import httpx

    from pickspin.adapters.probes import BackendProber

    answers = {"gemma-3-27b-vllm": [503, 503, 503, 200], "gemma-3-27b-tgi": ["refused"]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/metrics":  # the engine's own load, under vLLM's names
            return httpx.Response(200, text='vllm:num_requests_running{model_name="m"} 3\n'
                                            'vllm:num_requests_waiting{model_name="m"} 2\n')
        host = request.url.host
        answer = answers[host].pop(0)
        if answer == "refused":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answer)

    prober = BackendProber(settings, httpx.Client(transport=httpx.MockTransport(handler)))
    vllm, tgi = settings.service("gemma-3-27b-vllm"), settings.service("gemma-3-27b-tgi")
    probes = [prober.probe(vllm) for _ in range(4)]
    assert [p.healthy for p in probes] == [True, True, False, True]
    assert (probes[-1].running, probes[-1].waiting) == (3, 2)  # read when healthy
    assert probes[0].running is None
    assert prober.probe(tgi).healthy is False  # nothing listening counts at once
    prober.close()
