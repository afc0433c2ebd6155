"""The func lifecycle once for all four functions: a Flask app inside func-python's handle.

Each function's `func.py` subclasses `FlaskFunction`, builds its Flask app in `create_app`
from frozen settings, and exports `new()`. func-python (`func_python.http.serve(new)`, which
`kn func build` wraps the function with) calls `start(cfg)` with a copy of the environment,
then routes every request except `/health/*` to `handle`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask, Response, jsonify

from pickspin.errors import ConfigError, PickspinError
from pickspin.settings import CONFIG_ENV, Settings

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("pickspin")


class FlaskFunction(ABC):
    """Base of the gateway, classifier, selector and telemetry functions."""

    #: a2wsgi threads: requests served at once (streams hold one each)
    workers = 16

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._asgi: WSGIMiddleware | None = None
        self.app: Flask | None = None

    @abstractmethod
    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        """Build the Flask app; raise to fail start-up."""

    def start(self, cfg: Mapping[str, str]) -> None:
        """Load settings (unless injected) and build the app; bad config fails start-up."""
        try:
            settings = self._settings or Settings.load(cfg.get(CONFIG_ENV) or None)
        except ConfigError as exc:
            log.error("%s", exc.message)
            raise
        self.app = self.create_app(settings, cfg)
        register_error_handlers(self.app)
        self._asgi = WSGIMiddleware(self.app, workers=self.workers)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop taking requests; subclasses extend to release what `create_app` took."""
        self._asgi = None

    def alive(self) -> bool:
        return True

    def ready(self) -> tuple[bool, str]:
        if self._asgi is None:
            return False, "not started"
        return True, "OK"

    async def handle(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if self._asgi is None:
            await _plain(send, 503, b"function not started")
            return
        await self._asgi(scope, receive, send)  # type: ignore[arg-type]


def register_error_handlers(app: Flask) -> None:
    """One table from exceptions to responses: the OpenAI envelope, never a bare 500 page."""

    @app.errorhandler(PickspinError)
    def _pickspin(exc: PickspinError) -> tuple[Response, int]:
        return jsonify(exc.envelope()), exc.status

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> tuple[Response, int]:
        return jsonify(_envelope("no such route", "invalid_request_error", "not_found")), 404

    @app.errorhandler(405)
    def _bad_method(exc: Exception) -> tuple[Response, int]:
        return jsonify(
            _envelope("method not allowed", "invalid_request_error", "method_not_allowed")
        ), 405

    @app.errorhandler(413)
    def _too_large(exc: Exception) -> tuple[Response, int]:
        return jsonify(
            _envelope("request body too large", "invalid_request_error", "too_large")
        ), 413

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unexpected error")
        return jsonify(_envelope(f"internal error: {exc}", "server_error", "internal")), 500


def _envelope(message: str, type_: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


async def _plain(send: ASGISend, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
