"""An HTTP function with a Flask app inside func-python's `handle` (the gateway).

`func_python.http` hands every request except `/health/*` to `handle`, which runs the Flask
app through a2wsgi (streams included). The Flask app is built in `create_app` from frozen
settings; errors map once to the OpenAI envelope, never a bare 500 page.
"""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask, Response, g, jsonify, request

from pickspin.errors import PickspinError
from pickspin.function import ASGIReceive, ASGISend, Function, error_envelope
from pickspin.settings import Settings

log = logging.getLogger("pickspin")


class FlaskFunction(Function):
    """Base of an HTTP function whose routes are a Flask app."""

    #: a2wsgi threads: requests served at once (streams hold one each)
    workers = 16

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self._asgi: WSGIMiddleware | None = None
        self.app: Flask | None = None

    @abstractmethod
    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        """Build the Flask app; raise to fail start-up."""

    def setup(self, settings: Settings, cfg: Mapping[str, str]) -> None:
        self.app = self.create_app(settings, cfg)
        register_error_handlers(self.app)
        self._asgi = WSGIMiddleware(self.app, workers=self.workers)  # type: ignore[arg-type]

    def stop(self) -> None:
        super().stop()
        self._asgi = None

    async def handle(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if self._asgi is None:
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"function not started"})
            return
        await self._asgi(scope, receive, send)  # type: ignore[arg-type]


def register_error_handlers(app: Flask) -> None:
    """One table from exceptions to responses: the OpenAI envelope, never a bare 500 page."""

    @app.errorhandler(PickspinError)
    def _pickspin(exc: PickspinError) -> tuple[Response, int]:
        g.pickspin_error = exc  # for the app's own request log
        return jsonify(exc.envelope()), exc.status

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> tuple[Response, int]:
        return jsonify(error_envelope("no such route", "invalid_request_error", "not_found")), 404

    @app.errorhandler(405)
    def _bad_method(exc: Exception) -> tuple[Response, int]:
        return jsonify(error_envelope("method not allowed", "invalid_request_error",
                                      "method_not_allowed")), 405

    @app.errorhandler(413)
    def _too_large(exc: Exception) -> tuple[Response, int]:
        return jsonify(error_envelope("request body too large", "invalid_request_error",
                                      "too_large")), 413

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # the client gets no internal text, only an id to quote; the log has the details
        request_id = request.headers.get("x-request-id") or f"err-{uuid.uuid4().hex[:16]}"
        log.exception("unexpected error answering %s %s (request id %s)", request.method,
                      request.path, request_id)
        body = error_envelope(f"internal error (request id {request_id})", "server_error",
                              "internal")
        return jsonify(body), 500
