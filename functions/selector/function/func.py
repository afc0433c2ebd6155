"""pickspin selector: `io.pickspin.prompt.classified` in, `io.pickspin.route.selected` out;
`io.pickspin.telemetry.snapshot` updates the statistics it normalises over.

A func-python CloudEvent function (`invoke: cloudevent`). Every replica routes on the same
telemetry: snapshots pushed to it are kept, a copy half `PICKSPIN_SNAPSHOT_MAX_AGE`
seconds (default 5) old is refreshed from telemetry (`PICKSPIN_TELEMETRY_URL`) in the
background, and one older than that is refreshed before routing (`pickspin.core.snapshots`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.cehttp import EventClient
from pickspin.adapters.function import EventFunction, EventHandler, env_seconds
from pickspin.adapters.probes import BackendProber
from pickspin.core.decisionmemo import DecisionMemo
from pickspin.core.errors import PickspinError
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.events import (
    EventType,
    PromptClassified,
    RouteSelected,
    ServiceStats,
    TelemetryRequested,
    TelemetrySnapshot,
    data_of,
    make_event,
)
from pickspin.core.replyto import carry
from pickspin.core.settings import Settings
from pickspin.core.snapshots import LatestSnapshot
from pickspin.core.telemetry import snapshot_of
from pickspin.core.warmpool import time_of_day

SOURCE = "/pickspin/selector"
MAX_AGE_ENV = "PICKSPIN_SNAPSHOT_MAX_AGE"
DEFAULT_MAX_AGE = 5.0
log = logging.getLogger("pickspin.selector")


class SelectorFunction(EventFunction):
    settings: Settings | None = None
    latest: LatestSnapshot | None = None
    client: EventClient | None = None
    prober: BackendProber | None = None
    memo: DecisionMemo | None = None

    @property
    def snapshot(self) -> TelemetrySnapshot | None:
        return self.latest.snapshot if self.latest else None

    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        self.settings = settings
        self.memo = DecisionMemo()
        max_age = max_age_of(cfg)
        url = cfg.get("PICKSPIN_TELEMETRY_URL") or None
        if url is None:
            self.latest = LatestSnapshot(max_age=max_age)
        else:
            self.client = client = EventClient(timeout=5.0, token=cfg.get(TOKEN_ENV))

            async def pull() -> TelemetrySnapshot | None:
                return await asyncio.to_thread(ask_telemetry, client, url, max_age)

            self.prober = prober = BackendProber(settings)

            async def probe(held: TelemetrySnapshot | None) -> TelemetrySnapshot | None:
                probes = await asyncio.to_thread(prober.probe_all)
                log.warning("telemetry unreachable and its last snapshot stale: routing on "
                            "live health probes of the backends")
                known = held.services if held else {}
                stats = {s.name: known.get(s.name, ServiceStats()) for s in settings.services}
                return snapshot_of(stats, probes, time.time(),
                                   held.window_seconds if held else 0.0)

            # a snapshot older than three max-ages is not trusted when telemetry is down
            self.latest = LatestSnapshot(pull, max_age=max_age, probe=probe,
                                         stale_after=3 * max_age)
            # after its own cold start, a fresh snapshot instead of choosing blind
            if (first := ask_telemetry(client, url, max_age)) is not None:
                self.latest.offer(first)
        return {EventType.PROMPT_CLASSIFIED: self.route,
                EventType.TELEMETRY_SNAPSHOT: self.keep}

    async def keep(self, event: CloudEvent) -> None:
        assert self.latest is not None
        self.latest.offer(data_of(event, TelemetrySnapshot))

    def _time_of_day(self, profile: str | None) -> float | None:
        """Now, in the timezone of the profile's scheduled pools (None for a profile that
        does not exist: `select` refuses it)."""
        assert self.settings is not None
        name = profile or self.settings.default_profile
        if name not in self.settings.profiles:
            return None
        return time_of_day(self.settings, name, time.time())

    async def route(self, event: CloudEvent) -> CloudEvent:
        assert self.latest is not None and self.settings is not None and self.memo is not None
        classified = data_of(event, PromptClassified)
        snapshot = await self.latest.current()
        start = time.perf_counter()
        request = classified.route
        decision = self.memo.select(  # a decision made on this snapshot already is reused
            self.settings, snapshot.services if snapshot else {}, classified.probabilities,
            profile=request.profile, model=request.model, strategy=request.strategy,
            exclude=request.exclude, complexity=classified.complexity,
            success=classified.success or None, settled=classified.settled,
            time_of_day=self._time_of_day(request.profile),
        )
        selected = RouteSelected(
            request_id=classified.request_id,
            profile=decision.profile,
            strategy=decision.strategy.value,
            complexity=classified.complexity,
            router=classified.router,
            chosen=decision.chosen,
            runners_up=decision.runners_up,
            overflow=decision.overflow,
            elapsed_ms=(time.perf_counter() - start) * 1000,
            ask=classified.ask,  # the broker path: on to the responder
        )
        return carry(event, make_event(EventType.ROUTE_SELECTED, selected, SOURCE))

    def stop(self) -> None:
        super().stop()
        if self.client is not None:
            self.client.close()
        if self.prober is not None:
            self.prober.close()


def max_age_of(cfg: Mapping[str, str]) -> float:
    return env_seconds(cfg, MAX_AGE_ENV, DEFAULT_MAX_AGE, zero_ok=True)


def ask_telemetry(client: EventClient, url: str, max_age: float) -> TelemetrySnapshot | None:
    """Telemetry's latest snapshot (at most `max_age` old); None, logged, if it is down."""
    ask = make_event(EventType.TELEMETRY_REQUESTED, TelemetryRequested(max_age_seconds=max_age),
                     SOURCE)
    try:
        return data_of(client.request(url, ask, EventType.TELEMETRY_SNAPSHOT), TelemetrySnapshot)
    except PickspinError as exc:
        log.warning("no telemetry snapshot (%s); routing on what this replica has",
                    exc.message)
        return None


def new() -> SelectorFunction:
    return SelectorFunction()
