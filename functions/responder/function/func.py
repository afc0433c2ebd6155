"""pickspin responder: the broker path's last hop. `io.pickspin.route.selected` (with the
prompt the classifier and selector carried) in; the chosen backend answers, the answer goes
to the producer's `pickspinreplyto` sink as `io.pickspin.prompt.answered`, and the reply to
the Broker is `io.pickspin.inference.completed` (for telemetry).

A func-python CloudEvent function (`invoke: cloudevent`); the work is `pickspin.responder`.
`PICKSPIN_ANSWER_SECONDS` (default 120) bounds one backend answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from cloudevents.core.v1.event import CloudEvent

from pickspin.errors import ConfigError
from pickspin.eventauth import TOKEN_ENV
from pickspin.events import EventType
from pickspin.function import EventFunction, EventHandler
from pickspin.responder import DEFAULT_ANSWER_SECONDS, Responder
from pickspin.settings import Settings

ANSWER_SECONDS_ENV = "PICKSPIN_ANSWER_SECONDS"


def answer_seconds(cfg: Mapping[str, str]) -> float:
    raw = cfg.get(ANSWER_SECONDS_ENV) or str(DEFAULT_ANSWER_SECONDS)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:  # NaN too
        raise ConfigError("environment", [f"{ANSWER_SECONDS_ENV} must be seconds > 0, "
                                          f"not {raw!r}"])
    return value


class ResponderFunction(EventFunction):
    responder: Responder | None = None

    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        self.responder = Responder(token=cfg.get(TOKEN_ENV) or None,
                                   answer_seconds=answer_seconds(cfg))
        return {EventType.ROUTE_SELECTED: self.answer}

    async def answer(self, event: CloudEvent) -> CloudEvent:
        assert self.responder is not None
        # blocking HTTP to the backend and the sink: off the event loop (health checks go on)
        return await asyncio.to_thread(self.responder.answer, event)

    def stop(self) -> None:
        super().stop()
        if self.responder is not None:
            self.responder.close()


def new() -> ResponderFunction:
    return ResponderFunction()
