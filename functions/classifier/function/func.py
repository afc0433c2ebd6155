"""pickspin classifier: `io.pickspin.prompt.received` in, `io.pickspin.prompt.classified` out.

A func-python CloudEvent function (`invoke: cloudevent`): the middleware decodes the event,
`handle` (from `pickspin.adapters.function.EventFunction`) calls `classify`, and the reply goes back
through the sender the middleware gives it. A prompt from the Broker that names a sink
(`pickspinreplyto`) keeps it, and its prompt, on the reply (`pickspin.core.replyto`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.function import EventFunction, EventHandler
from pickspin.core.errors import InvalidRequest
from pickspin.core.events import (
    Ask,
    EventType,
    PromptClassified,
    PromptReceived,
    data_of,
    make_event,
)
from pickspin.core.replyto import carry, check_sink, reply_to
from pickspin.core.routers import RouterRegistry
from pickspin.core.settings import RouterName, Settings
from pickspin.semantic.registry import build_registry

SOURCE = "/pickspin/classifier"


class ClassifierFunction(EventFunction):
    registry: RouterRegistry | None = None
    default_router = ""

    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        self.registry = build_registry(settings)
        self.default_router = settings.routing.mode.value
        return {EventType.PROMPT_RECEIVED: self.classify}

    async def classify(self, event: CloudEvent) -> CloudEvent:
        assert self.registry is not None
        received = data_of(event, PromptReceived)
        if (sink := reply_to(event)) is not None:
            check_sink(sink)  # a bad return address fails here (400), not after the answer
        name = received.route.router or self.default_router
        try:
            router = self.registry.get(name)
        except LookupError as exc:
            raise InvalidRequest(str(exc), param="router") from None
        if router.name == RouterName.KEYWORD:  # microseconds of pure Python
            result = router.timed(received.prompt)
        else:  # an ONNX session: off the event loop, so health checks and others go on
            result = await asyncio.to_thread(router.timed, received.prompt)
        classified = PromptClassified(
            request_id=received.request_id,
            complexity=result.complexity,  # type: ignore[arg-type]
            probabilities=dict(result.probabilities),
            router=result.router,
            elapsed_ms=result.elapsed_ms,
            truncated=result.truncated,
            route=received.route,
            success=dict(result.success),
            settled=result.settled,
            # the broker path (a sink named): the prompt goes on to the responder
            ask=None if sink is None else Ask(
                prompt=received.prompt, max_tokens=received.max_tokens,
                temperature=received.temperature),
        )
        return carry(event, make_event(EventType.PROMPT_CLASSIFIED, classified, SOURCE))

    def ready(self) -> tuple[bool, str]:
        """Ready when the configured router loaded; other unavailable routers are named."""
        started, message = super().ready()
        if not started or self.registry is None:
            return False, message
        missing = self.registry.unavailable
        notes = "; ".join(f"{name}: {why}" for name, why in sorted(missing.items()))
        if self.default_router in missing:
            return False, f"the configured router is unavailable: {notes}"
        return True, f"OK ({notes})" if notes else "OK"


def new() -> ClassifierFunction:
    return ClassifierFunction()
