"""A cold service is not free capacity: the selector keeps it as a service to wake, carries
the warm services outside the floor or full as `overflow`, and the gateway and the responder
send the request to a warm one (queueing at a full one of the tier) instead of holding it
for a start that cannot end in time."""

from __future__ import annotations

from pickspin.apps.gateway.app import Gateway, Wiring
from pickspin.core.events import Candidate, RouteSelected, ServiceStats
from pickspin.core.scoring import ServiceView
from pickspin.core.selection import select

HIGH = {"low": 0.03, "medium": 0.12, "high": 0.85}
HARD_SUCCESS = {"small": 0.25, "medium": 0.55, "large": 0.75}


def _burst(settings) -> dict[str, ServiceStats]:
    """Quality's warm pools in a burst: the one warm deepseek-r1 replica is full, the other
    large services are at zero, the warm llama-3-70b replica has room."""
    stats = {s.name: ServiceStats(replicas=0, ready_replicas=0) for s in settings.services}
    full = settings.service("deepseek-r1-trtllm").concurrency
    stats["deepseek-r1-trtllm"] = ServiceStats(replicas=1, ready_replicas=1, running=full)
    stats["llama-3-70b-trtllm"] = ServiceStats(replicas=1, ready_replicas=1, running=3)
    return stats


def test_a_cold_service_has_no_free_capacity_but_is_a_service_to_wake(settings):
    svc = settings.service("deepseek-r1-vllm")
    cold = ServiceView(svc, settings.model(svc.model), ServiceStats(replicas=0))
    assert not cold.has_capacity and not cold.eligible and cold.wakeable
    warm = ServiceView(svc, settings.model(svc.model), ServiceStats(replicas=1, running=1))
    assert warm.has_capacity and warm.eligible and not warm.wakeable


def test_a_full_warm_service_is_carried_as_overflow_after_the_free_ones(settings):
    d = select(settings, _burst(settings), HIGH, profile="quality", success=HARD_SUCCESS,
               complexity="high")
    assert d.chosen.model == "deepseek-r1" and not d.chosen.warm  # the best is to wake
    names = [c.service for c in d.overflow]
    assert names == ["llama-3-70b-trtllm", "deepseek-r1-trtllm"]  # free first, then full
    assert [c.full for c in d.overflow] == [False, True]
    assert all(c.warm for c in d.overflow)


class _Cold:
    def __init__(self) -> None:
        self.held: list[str] = []
        self.woken: list[str] = []

    def hold(self, candidate: Candidate, limit: float) -> float | None:
        self.held.append(candidate.service)
        return None

    def wake(self, candidate: Candidate, limit: float) -> bool:
        self.woken.append(candidate.service)
        return True


def test_the_gateway_serves_a_burst_from_warm_services_and_wakes_the_cold_choice(settings):
    """The bursty-day regression: the request used to be held twice for a cold deepseek-r1
    (cold start 480–900 s, hold 120 s) and failed."""
    d = select(settings, _burst(settings), HIGH, profile="quality", success=HARD_SUCCESS,
               complexity="high")
    sel = RouteSelected(request_id="r", profile="quality", strategy="multi-objective",
                        complexity="high", router="semantic", chosen=d.chosen,
                        runners_up=d.runners_up, overflow=d.overflow)
    cold = _Cold()
    gw = Gateway(settings, Wiring("http://127.0.0.1:9", "http://127.0.0.1:9"), cold=cold)  # type: ignore[arg-type]
    order, outcome = gw._spin(gw._plan(sel))
    assert outcome.action == "substitute" and cold.held == []
    assert cold.woken == [d.chosen.service]
    assert [c.service for c in order[:2]] == ["llama-3-70b-trtllm", "deepseek-r1-trtllm"]
