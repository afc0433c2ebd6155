"""pickspin responder: the broker path's last hop. `io.pickspin.route.selected` (with the
prompt the classifier and selector carried) in; the chosen backend answers, the answer goes
to the producer's `pickspinreplyto` sink as `io.pickspin.prompt.answered`, and the reply to
the Broker is `io.pickspin.inference.completed` (for telemetry).

A func-python CloudEvent function (`invoke: cloudevent`); the work is `pickspin.apps.responder`.
`PICKSPIN_ANSWER_SECONDS` (default 120) bounds one backend answer. The middleware answers
every path but `/health/*` as a CloudEvent endpoint, so the `pickspin_*` metrics (the
demand and pending requests the ScaledObjects read) are served on a port of their own,
`PICKSPIN_METRICS_PORT` (unset: not served).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.function import EventFunction, EventHandler, env_seconds
from pickspin.apps.responder import DEFAULT_ANSWER_SECONDS, Responder
from pickspin.core.errors import ConfigError
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.events import EventType
from pickspin.core.settings import Settings

ANSWER_SECONDS_ENV = "PICKSPIN_ANSWER_SECONDS"
METRICS_PORT_ENV = "PICKSPIN_METRICS_PORT"


def answer_seconds(cfg: Mapping[str, str]) -> float:
    return env_seconds(cfg, ANSWER_SECONDS_ENV, DEFAULT_ANSWER_SECONDS)


def metrics_port(cfg: Mapping[str, str]) -> int | None:
    raw = cfg.get(METRICS_PORT_ENV) or ""
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError("environment", [f"{METRICS_PORT_ENV} must be a port, not {raw!r}"])
    return int(raw)


class ResponderFunction(EventFunction):
    responder: Responder | None = None
    metrics_server: tuple[WSGIServer, threading.Thread] | None = None
    #: the release of the backend connections, started on the loop by `stop`

    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        port = metrics_port(cfg)
        self.responder = Responder(settings, token=cfg.get(TOKEN_ENV) or None,
                                   answer_seconds=answer_seconds(cfg))
        if port is not None:
            from prometheus_client import start_http_server

            self.metrics_server = start_http_server(port,
                                                    registry=self.responder.metrics.registry)
        return {EventType.ROUTE_SELECTED: self.answer}

    async def answer(self, event: CloudEvent) -> CloudEvent:
        assert self.responder is not None
        return await self.responder.answer(event)

    def stop(self) -> None:
        super().stop()
        if self.metrics_server is not None:
            self.metrics_server[0].shutdown()
            self.metrics_server[0].server_close()
        if self.responder is None:
            return
        self.responder.close()
        self.release(self.responder.aclose)


def new() -> ResponderFunction:
    return ResponderFunction()
