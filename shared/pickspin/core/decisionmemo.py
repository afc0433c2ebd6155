"""Decisions remembered while the statistics they were made on hold.

`selection.select` is a function of its inputs: the settings, the snapshot's statistics, the
request's class and probabilities, its route fields and, for a billed profile, which scheduled
warm pools hold at the time of day. A snapshot holds for seconds, and many requests ask the same
thing of it (every keyword-routed request of a class, every request the hybrid's short-prompt
rule settled), so the selector answers those without scoring the matrix again. A new snapshot
(or new settings) starts afresh; the random strategy is never remembered (it draws).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence

from pickspin.core.events import ServiceStats
from pickspin.core.selection import Decision, select
from pickspin.core.settings import Settings, StrategyName
from pickspin.core.warmpool import active_windows


class DecisionMemo:
    """`select`, remembering up to `size` decisions per snapshot (least recently used out)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._settings: Settings | None = None
        self._stats: Mapping[str, ServiceStats] | None = None
        self._decisions: OrderedDict[Hashable, Decision] = OrderedDict()
        self.hits = self.misses = 0

    def select(self, settings: Settings, stats: Mapping[str, ServiceStats],
               probabilities: Mapping[str, float], *, profile: str | None = None,
               model: str | None = None, strategy: str | None = None,
               exclude: Sequence[str] = (), complexity: str | None = None,
               success: Mapping[str, float] | None = None, settled: bool = False,
               time_of_day: float | None = None, rng: random.Random | None = None) -> Decision:
        """What `select` decides for these inputs (see there; it raises the same errors)."""
        def decide() -> Decision:
            return select(settings, stats, probabilities, profile=profile, model=model,
                          strategy=strategy, exclude=exclude, complexity=complexity,
                          success=success, settled=settled, time_of_day=time_of_day, rng=rng)

        if (strategy or settings.routing.strategy) == StrategyName.RANDOM.value:
            return decide()
        if settings is not self._settings or stats is not self._stats:
            self._settings, self._stats = settings, stats
            self._decisions.clear()
        key = (profile, model, strategy, tuple(exclude), complexity,
               tuple(probabilities.items()), tuple(success.items()) if success else None,
               settled, _windows(settings, profile, time_of_day))
        decision = self._decisions.get(key)
        if decision is not None:
            self.hits += 1
            self._decisions.move_to_end(key)
            return decision
        self.misses += 1
        decision = decide()
        self._decisions[key] = decision
        if len(self._decisions) > self.size:
            self._decisions.popitem(last=False)
        return decision


def _windows(settings: Settings, profile: str | None,
             time_of_day: float | None) -> tuple[bool, ...] | None:
    """`warmpool.active_windows`, or None for a profile `select` will refuse."""
    if (profile or settings.default_profile) not in settings.profiles:
        return None
    return active_windows(settings, profile, time_of_day)
