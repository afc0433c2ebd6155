"""One telemetry state whichever selector replica answers.

A `telemetry.snapshot` pushed through the Broker reaches one selector replica; the others
would route on what they had. So each replica also pulls: before it routes, a replica
asks telemetry for its latest snapshot (`io.pickspin.telemetry.requested`; telemetry
answers from its cache when that is young enough, so N replicas cost it one computation).
The pull starts ahead of time, in the background, once the copy was last confirmed more than
`ahead` × `max_age` seconds ago, so under steady traffic no request waits for it; only a
request that finds the copy older than `max_age` waits for the pull, at most `wait` seconds,
then routes on what it has while the pull finishes. One pull at a time per replica, and at
most one attempt per `ahead` × `max_age` when telemetry is down. Every replica therefore
routes on telemetry at most `max_age` (plus telemetry's own cache age) old.
When telemetry cannot be reached and the held snapshot is older than `stale_after`, the
replica probes the backends itself (`probe`): health from now, the rest kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from pickspin.core.events import TelemetrySnapshot

Pull = Callable[[], Awaitable[TelemetrySnapshot | None]]
# the held snapshot (or None) → one whose health comes from probing the backends now
Probe = Callable[[TelemetrySnapshot | None], Awaitable[TelemetrySnapshot | None]]

log = logging.getLogger("pickspin.selector")


class LatestSnapshot:
    """The newest snapshot one replica knows, pushed or pulled.

    >>> latest = LatestSnapshot(pull=ask_telemetry, max_age=5.0)  # doctest: +SKIP
    >>> latest.offer(pushed_snapshot)                              # doctest: +SKIP
    >>> stats = (await latest.current()).services                  # doctest: +SKIP
    """

    def __init__(self, pull: Pull | None = None, max_age: float = 5.0, wait: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 probe: Probe | None = None, stale_after: float = 15.0,
                 ahead: float = 0.5) -> None:
        self.pull = pull
        self.probe = probe
        self.stale_after = stale_after
        self.received_at = -math.inf  # when the held snapshot arrived (or was probed)
        self.max_age = max_age
        self.ahead = ahead  # the share of max_age after which a pull starts in the background
        self.wait = wait
        self.clock = clock
        self.snapshot: TelemetrySnapshot | None = None
        self.pulls = 0
        self._checked_at = -math.inf  # when the copy was last known to be the latest
        self._tried_at = -math.inf  # when the last pull started
        self._pulling: asyncio.Task[None] | None = None

    def offer(self, snapshot: TelemetrySnapshot) -> bool:
        """Keep `snapshot`, ordered by when it arrived here, not by the time it claims: one
        that claims to be older than the one held is skipped only while that one is fresh
        (a push and a pull crossing), so a snapshot stamped in the future can never pin the
        state for longer than `max_age`. True if kept."""
        held = self.snapshot
        if (held is not None and snapshot.generated_at < held.generated_at
                and not self.stale()):
            return False
        self.snapshot = snapshot  # one reference swap: readers see the old or the new
        self._checked_at = self.received_at = self.clock()
        return True

    def stale(self) -> bool:
        return self.clock() - self._checked_at > self.max_age

    async def current(self) -> TelemetrySnapshot | None:
        """The snapshot to route on: refreshed in the background once it is `ahead` of its
        max age, and waited for (at most `wait`) only when it is stale."""
        if self.pull is None:
            return self.snapshot
        now, early = self.clock(), self.ahead * self.max_age
        if (self._pulling is None and now - self._checked_at > early
                and now - self._tried_at > early):  # failed pulls count too
            self._tried_at = now
            self._pulling = asyncio.create_task(self._refresh(self.pull))
        if self._pulling is not None and self.stale():
            await asyncio.wait({self._pulling}, timeout=self.wait)
        return self.snapshot

    async def _refresh(self, pull: Pull) -> None:
        try:
            snapshot = await pull()
            self.pulls += 1
            if (snapshot is None and self.probe is not None
                    and self.clock() - self.received_at > self.stale_after):
                # telemetry is down and what is held is too old to trust: see for ourselves
                snapshot = await self.probe(self.snapshot)
            if snapshot is not None:
                self.offer(snapshot)
                self._checked_at = self.clock()  # confirmed latest, even if not newer
        except Exception:
            log.exception("pulling the latest telemetry snapshot failed")
        finally:
            self._pulling = None
