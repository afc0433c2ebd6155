"""pickspin gateway: the OpenAI-compatible endpoint (HTTP in, Pick, proxy, events out)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.requests import Request

from pickspin.adapters.httpfunction import StarletteFunction
from pickspin.apps.gateway import accesslog
from pickspin.apps.gateway.app import Gateway, Wiring
from pickspin.apps.gateway.routes import create_app, on_error
from pickspin.core.errors import ConfigError
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.settings import Settings

log = logging.getLogger("pickspin.apps.gateway")
# SIGUSR1 asks the gateway to drain, then stop (what `pickspin down` sends first): it takes
# no new requests, lets those in flight finish within PICKSPIN_DRAIN_SECONDS, then SIGTERMs
# itself (func-python then stops hypercorn, whose own grace is only 3 s). In a cluster
# Knative's queue-proxy drains before the container gets SIGTERM.
DRAIN_SIGNAL = signal.SIGUSR1


def api_keys(cfg: Mapping[str, str]) -> tuple[str, ...]:
    """The keys callers may present: `$PICKSPIN_API_KEYS`, comma-separated."""
    return tuple(k.strip() for k in cfg.get("PICKSPIN_API_KEYS", "").split(",") if k.strip())


class GatewayFunction(StarletteFunction):
    gateway: Gateway | None = None
    drain_seconds = 30.0
    #: the event loop serving the gateway (func-python starts the function on it)
    loop: asyncio.AbstractEventLoop | None = None

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Starlette:
        accesslog.configure()  # JSON lines: one per request, never the prompt or the answer
        needed = ("PICKSPIN_CLASSIFIER_URL", "PICKSPIN_SELECTOR_URL")
        missing = [k for k in needed if not cfg.get(k)]
        if missing:
            raise ConfigError("environment", [f"{k} must be set" for k in missing])
        wiring = Wiring(
            classifier_url=cfg["PICKSPIN_CLASSIFIER_URL"],
            selector_url=cfg["PICKSPIN_SELECTOR_URL"],
            sink=cfg.get("K_SINK") or None,
            replicas_url=cfg.get("PICKSPIN_REPLICAS_URL") or None,
            token=cfg.get(TOKEN_ENV) or None,
            api_keys=api_keys(cfg),
            max_inflight=int(cfg.get("PICKSPIN_MAX_INFLIGHT") or 256),
        )
        if not wiring.api_keys:
            log.warning("PICKSPIN_API_KEYS is not set: the OpenAI endpoints are open to anyone "
                        "who can reach them")
        self.gateway = Gateway(settings, wiring)
        with contextlib.suppress(RuntimeError):  # no loop: started by a test, not served
            self.loop = asyncio.get_running_loop()
        self.drain_seconds = float(cfg.get("PICKSPIN_DRAIN_SECONDS") or self.drain_seconds)
        if threading.current_thread() is threading.main_thread():
            signal.signal(DRAIN_SIGNAL, lambda *_: self._drain_then_stop())
        return create_app(self.gateway)

    def on_error(self, request: Request, status: int, exc: Exception) -> None:
        on_error(request, status, exc)

    def _drain_then_stop(self) -> None:
        gateway = self.gateway
        if gateway is None or gateway.draining:
            return

        def run() -> None:
            log.warning("draining: %d requests in flight, up to %.0f s", gateway.active,
                        self.drain_seconds)
            done = gateway.drain(self.drain_seconds)
            if done:
                log.warning("drained")
            else:
                log.warning("drain grace over with %d requests in flight", gateway.active)
            if self.loop is not None:  # deliver the drained requests' inference.completed
                flushed = asyncio.run_coroutine_threadsafe(gateway.emitter.aclose(), self.loop)
                with contextlib.suppress(Exception):
                    flushed.result(timeout=6.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=run, name="drain", daemon=True).start()

    def ready(self) -> tuple[bool, str]:
        if self.gateway is not None and self.gateway.draining:
            return False, "draining"
        return super().ready()

    def stop(self) -> None:
        super().stop()
        if self.gateway is None:
            return
        self.gateway.close()
        self.release(self.gateway.aclose)


def new() -> GatewayFunction:
    return GatewayFunction()
