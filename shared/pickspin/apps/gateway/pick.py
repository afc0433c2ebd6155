"""Pick at the gateway: the request's model and override headers read into what the
selector must honour, then the classifier and the selector asked over CloudEvents.

A collaborator that is starting (or restarting after a crash) is waited out with back-off,
as Knative's activator holds a request for a revision that is starting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cloudevents.core.v1.event import CloudEvent
from prometheus_client import Histogram

from pickspin.adapters.asynchttp import AsyncEventClient
from pickspin.apps.gateway.openai_request import AUTO_MODEL, MAX_CLASSIFIED_CHARS, ParsedRequest
from pickspin.core.errors import (
    InvalidRequest,
    ModelNotFound,
    RelayedError,
    Unreachable,
    UpstreamError,
)
from pickspin.core.events import (
    D,
    EventType,
    PromptClassified,
    PromptReceived,
    RouteRequest,
    RouteSelected,
    make_event,
)
from pickspin.core.settings import COMPLEXITY_CLASSES, RouterName, Settings

SOURCE = "/pickspin/gateway"
PROFILE_PREFIX = "pickspin/"


@dataclass(frozen=True)
class Pick:
    complexity: str
    router: str
    selected: RouteSelected
    decision_ms: float
    settled: bool = False  # the hybrid's short-prompt rule settled the class


class Picker:
    """The gateway's side of Pick: one per gateway process."""

    def __init__(self, settings: Settings, classifier_url: str, selector_url: str,
                 events: AsyncEventClient, classification: Histogram, *,
                 clock: Callable[[], float] = time.perf_counter,
                 route_wait: float = 10.0) -> None:
        self.settings = settings
        self.classifier_url = classifier_url
        self.selector_url = selector_url
        self.events = events
        self.classification = classification  # seconds per classification, by router
        self.clock = clock
        self.route_wait = route_wait
        self._models = {m.name for m in settings.models}
        self._profiles = sorted(settings.profiles)
        self._routers = {r.value for r in RouterName}
        #: a concrete model skips classification: this stands for it (Spin still picks)
        self._even = {k: 1 / len(COMPLEXITY_CLASSES) for k in COMPLEXITY_CLASSES}

    def route_request(self, model: str, headers: Mapping[str, str]) -> RouteRequest:
        """`model` and the override headers → what the selector must honour."""
        profile = headers.get("x-pickspin-profile")
        router = headers.get("x-pickspin-router")
        concrete = None
        if model == AUTO_MODEL:
            pass
        elif model.startswith(PROFILE_PREFIX):
            named = model.removeprefix(PROFILE_PREFIX)
            if named not in self.settings.profiles:
                raise ModelNotFound(f"the model {model!r} does not exist; profiles are "
                                    f"{self._profiles}", param="model")
            profile = profile or named
        elif model in self._models:
            concrete = model
        else:
            raise ModelNotFound(f"the model {model!r} does not exist", param="model")
        if profile is not None and profile not in self.settings.profiles:
            raise InvalidRequest(f"x-pickspin-profile: unknown profile {profile!r}; choose one "
                                 f"of {self._profiles}", param="x-pickspin-profile")
        if router is not None and router not in self._routers:
            raise InvalidRequest(f"x-pickspin-router: unknown router {router!r}; choose one of "
                                 f"{[r.value for r in RouterName]}", param="x-pickspin-router")
        return RouteRequest(profile=profile, router=router, model=concrete)

    async def pick(self, request_id: str, parsed: ParsedRequest,
                   headers: Mapping[str, str]) -> Pick:
        route = self.route_request(parsed.model, headers)
        start = self.clock()
        if route.model is None:
            received = PromptReceived(request_id=request_id, route=route,
                                     prompt=parsed.prompt[:MAX_CLASSIFIED_CHARS])
            classified = await self._call(
                "classifier", self.classifier_url,
                make_event(EventType.PROMPT_RECEIVED, received, SOURCE),
                EventType.PROMPT_CLASSIFIED, PromptClassified)
            self.classification.labels(classified.router).observe(classified.elapsed_ms / 1000)
        else:  # a concrete model skips Pick's classification; Spin still picks its backend
            classified = PromptClassified(request_id=request_id, complexity="medium",
                                          probabilities=self._even, router="none",
                                          elapsed_ms=0.0, route=route)
        selected = await self._call(
            "selector", self.selector_url,
            make_event(EventType.PROMPT_CLASSIFIED, classified, SOURCE),
            EventType.ROUTE_SELECTED, RouteSelected)
        complexity = classified.complexity if route.model is None else "unclassified"
        decision_ms = (self.clock() - start) * 1000
        return Pick(complexity, classified.router, selected, decision_ms, classified.settled)

    async def _call(self, name: str, url: str, event: CloudEvent, expect: EventType,
                    model: type[D]) -> D:
        """Request/reply with a collaborator; its URL stays in the log, not in the answer.

        A collaborator that does not listen (starting, or restarted after a crash) and a
        selector with no service ready yet (503 at start-up) are waited out with back-off
        for up to `route_wait` seconds, as Knative's activator holds a request for a
        revision that is starting; other errors answer at once."""
        deadline = time.monotonic() + self.route_wait
        delay = 0.05
        while True:
            try:
                return await self.events.request_data(url, event, expect, model)
            except Unreachable as exc:
                if time.monotonic() + delay > deadline:
                    raise UpstreamError(f"the {name} function did not answer",
                                        detail=exc.message) from None
            except UpstreamError as exc:
                raise UpstreamError(f"the {name} function did not answer properly",
                                    detail=exc.message) from None
            except RelayedError as exc:
                if exc.status != 503 or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
