"""The served balanced profile on hand-written prompts, with the committed router, at every
part of its day: the warm pools of that time of day are ready (its scheduled large replica
by day, the night's cheaper large model by night), the rest at zero. An easy definition stays
on the small tier and a proof goes to a larger one, whatever is warm."""

from __future__ import annotations

import pytest

from pickspin.core.events import ServiceStats
from pickspin.core.selection import select
from pickspin.core.warmpool import warm_pools
from pickspin.semantic.registry import build_registry

HOURS = (0, 3, 6.99, 7, 12, 20.99, 21, 23)


@pytest.fixture(scope="module")
def router(settings):
    return build_registry(settings).get(settings.routing.mode.value)  # the served router


def _steady(settings, hour: float) -> dict[str, ServiceStats]:
    pools = warm_pools(settings, "balanced", hour * 3600)
    return {name: ServiceStats(replicas=n, ready_replicas=n) for name, n in pools.items()}


@pytest.mark.parametrize("hour", HOURS)
def test_define_stays_small_and_prove_goes_larger_all_day(settings, router, hour):
    tier = {m.name: m.tier for m in settings.models}
    chosen = {}
    for prompt in ("Define the word photosynthesis",
                   "Prove that there are infinitely many prime numbers",
                   "Prove that there are infinitely many primes"):
        c = router.classify(prompt)
        d = select(settings, _steady(settings, hour), c.probabilities, profile="balanced",
                   complexity=c.complexity, success=c.success or None,
                   settled=c.settled, time_of_day=hour * 3600)
        chosen[prompt] = (c.complexity, tier[d.chosen.model], d.chosen.warm)
    assert chosen["Define the word photosynthesis"] == ("low", "small", True)
    for prompt in list(chosen)[1:]:
        assert chosen[prompt][0] == "high"
        assert chosen[prompt][1] != "small" and chosen[prompt][2], chosen
