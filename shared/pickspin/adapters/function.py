"""The func lifecycle once for all four functions, and the CloudEvent functions' `handle`.

Each function's `func.py` exports `new()`; func-python (what `kn func build` wraps the
function with) calls `start(cfg)` with a copy of the environment, answers `/health/*` from
`alive()` and `ready()`, and hands every other request to `handle(scope, receive, send)`.

The classifier, selector and telemetry are `invoke: cloudevent` functions, served by
`func_python.cloudevent`: before `handle` runs it has decoded the request into
`scope["event"]` (a request that is not a CloudEvent gets its 400) and wrapped `send` in a
`CloudEventSender`. `EventFunction.handle` looks the event's type up in the function's
handler table, replies with the event the handler returns (200, in the mode it was asked
in) or 202 when there is none, and maps errors once: a `PickspinError` to its status with the
OpenAI error envelope (bad event data is a 400), anything else to a logged 500.

The gateway is an HTTP function with a Starlette app inside (`pickspin.adapters.httpfunction`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import prometheus_client
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.errors import ConfigError, InvalidEvent, PickspinError, error_envelope
from pickspin.core.eventauth import TOKEN_ENV, Signer
from pickspin.core.events import EventType
from pickspin.core.settings import CONFIG_ENV, Settings

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
EventHandler = Callable[[CloudEvent], Awaitable[CloudEvent | None]]

log = logging.getLogger("pickspin")


def env_seconds(cfg: Mapping[str, str], name: str, default: float, *,
                zero_ok: bool = False) -> float:
    """A duration from the function's environment (`default` when unset); ConfigError when it
    is not a number of seconds > 0 (>= 0 with `zero_ok`), NaN included."""
    raw = cfg.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 if zero_ok else value > 0):
        raise ConfigError("environment", [f"{name} must be seconds {'>=' if zero_ok else '>'} "
                                          f"0, not {raw!r}"])
    return value


class Function(ABC):
    """The lifecycle func expects: `start(cfg)`, `stop()`, `alive()`, `ready()`, `handle`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self.started = False
        self._closing: asyncio.Task[None] | None = None  # `release` on the loop, kept alive

    @abstractmethod
    def setup(self, settings: Settings, cfg: Mapping[str, str]) -> None:
        """Build what the function serves with; raise to fail start-up."""

    @abstractmethod
    async def handle(self, scope: dict[str, Any], receive: ASGIReceive, send: Any) -> None:
        """Serve one request (ASGI)."""

    def start(self, cfg: Mapping[str, str]) -> None:
        """Load settings (unless injected) and set up; bad config fails start-up."""
        try:
            settings = self._settings or Settings.load(cfg.get(CONFIG_ENV) or None)
        except ConfigError as exc:
            log.error("%s", exc.message)
            raise
        # func's middleware logs at INFO; httpx would add a line per request (every health
        # probe and metrics scrape of every snapshot: noise, and a sixth of telemetry's CPU)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        # no `_created` series: nothing reads them, and they are a tenth of every scrape
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.setup(settings, cfg)
        # what start-up built (settings, models, clients) lives as long as the process: out
        # of the collector's sight, a full collection under load scans only what requests made
        gc.freeze()
        self.started = True

    def stop(self) -> None:
        """Stop taking requests; subclasses extend to release what `setup` took."""
        self.started = False

    def release(self, aclose: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Release pools that belong to the event loop (aiohttp sessions): func-python stops
        the function on its loop, so the release is a task there; stopped outside any loop
        (a test), it runs at once."""
        try:
            self._closing = asyncio.get_running_loop().create_task(aclose())
        except RuntimeError:
            asyncio.run(aclose())

    def alive(self) -> bool:
        return True

    def ready(self) -> tuple[bool, str]:
        return (True, "OK") if self.started else (False, "not started")


class NotStarted(PickspinError):
    status = 503
    type = "service_unavailable"
    code = "not_started"


class WrongMiddleware(PickspinError):
    code = "wrong_middleware"


# A Knative PingSource cannot sign its ticks; a forged one only makes telemetry compute
# and send a snapshot of its own, which changes no route.
UNSIGNED = frozenset({EventType.PING.value})


class EventFunction(Function):
    """Base of the CloudEvent functions: a table from event type to async handler.

    >>> class Echo(EventFunction):
    ...     def create_handlers(self, settings, cfg):
    ...         return {EventType.PING: self.echo}
    ...     async def echo(self, event):
    ...         return event
    """

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self.handlers: Mapping[str, EventHandler] = {}
        self.signer = Signer(None)

    @abstractmethod
    def create_handlers(self, settings: Settings,
                        cfg: Mapping[str, str]) -> Mapping[EventType, EventHandler]:
        """Build the function's state; return the handler of each event type it takes."""

    def setup(self, settings: Settings, cfg: Mapping[str, str]) -> None:
        self.signer = Signer(cfg.get(TOKEN_ENV))
        self.signer.warn_if_open(type(self).__name__)
        self.handlers = {t.value: h for t, h in self.create_handlers(settings, cfg).items()}

    async def handle(self, scope: dict[str, Any], receive: ASGIReceive, send: Any) -> None:
        try:
            reply = await self._dispatch(scope.get("event"))
        except PickspinError as exc:
            await _respond(send, exc.status, json.dumps(exc.envelope()).encode())
            return
        except Exception:
            log.exception("unexpected error handling an event")  # the details stay here
            body = error_envelope("internal error", "server_error", "internal")
            await _respond(send, 500, json.dumps(body).encode())
            return
        if reply is None:
            await _respond(send, 202, b"", content_type=None)
            return
        # signed: a reply the Broker re-injects must pass the next hop
        if _structured(scope):
            await send.structured(self.signer.sign(reply))
        else:  # the body is the signed bytes: the data serialised once
            await send.binary(self.signer.sign(reply, wire=True))

    async def _dispatch(self, event: object) -> CloudEvent | None:
        if not self.started:
            raise NotStarted("function not started")
        if event is None:
            raise WrongMiddleware("no CloudEvent in scope: an `invoke: cloudevent` function is "
                                  "served by func_python.cloudevent")
        if not isinstance(event, CloudEvent):  # the middleware also decodes spec 0.3
            raise InvalidEvent("only CloudEvents spec version 1.0 is accepted")
        if event.get_type() not in UNSIGNED:
            self.signer.verify(event)  # 401 for an unsigned or forged event, before anything
        handler = self.handlers.get(event.get_type())
        if handler is None:
            raise InvalidEvent(f"unexpected event type {event.get_type()!r}; this function "
                               f"takes {sorted(self.handlers)}")
        return await handler(event)


def _structured(scope: Mapping[str, Any]) -> bool:
    """Whether the request came in structured mode (the reply goes back the same way)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(b"application/cloudevents")
    return False


async def _respond(send: Any, status: int, body: bytes,
                   content_type: bytes | None = b"application/json") -> None:
    """A plain HTTP answer, through the CloudEventSender's raw channel when there is one."""
    raw = getattr(send, "http", send)
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    await raw({"type": "http.response.start", "status": status, "headers": headers})
    await raw({"type": "http.response.body", "body": body})
