"""An HTTP function whose routes are a Starlette app inside func-python's `handle` (the
gateway).

`func_python.http` hands every request except `/health/*` to `handle`, which runs the
Starlette app natively on the event loop: no WSGI bridge, no thread per request, streams
sent as they come. The app is built in `create_app` from frozen settings; errors map once
to the OpenAI envelope (`error_response`), never a bare 500 page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pickspin.adapters.function import ASGIReceive, ASGISend, Function
from pickspin.core.errors import PickspinError, error_envelope
from pickspin.core.settings import Settings

log = logging.getLogger("pickspin")
JSON = "application/json"
# what Starlette's own HTTP errors are called in the envelope
# (request, status, the exception) of every error answer the handlers below give
OnError = Callable[[Request, int, Exception], None]
HTTP_CODES = {404: ("no such route", "not_found"), 405: ("method not allowed",
                                                         "method_not_allowed"),
              413: ("request body too large", "too_large")}


def error_response(status: int, message: str, type_: str, code: str | None,
                   param: str | None = None, headers: Mapping[str, str] | None = None
                   ) -> Response:
    """An answer in the OpenAI error envelope."""
    return Response(json.dumps(error_envelope(message, type_, code, param)),
                    status_code=status, media_type=JSON, headers=headers)


class StarletteFunction(Function):
    """Base of an HTTP function whose routes are a Starlette app."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings)
        self.app: Starlette | None = None

    @abstractmethod
    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Starlette:
        """Build the Starlette app; raise to fail start-up."""

    def setup(self, settings: Settings, cfg: Mapping[str, str]) -> None:
        self.app = self.create_app(settings, cfg)
        register_error_handlers(self.app, self.on_error)

    def on_error(self, request: Request, status: int, exc: Exception) -> None:
        """Called for each error answer an exception became (the gateway logs a line)."""

    def stop(self) -> None:
        super().stop()
        self.app = None

    async def handle(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if self.app is None:
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"function not started"})
            return
        # Starlette re-raises an unexpected error after its handler answered and logged it
        # (for a server to log); func-python would answer a second time
        with contextlib.suppress(Exception):
            await self.app(scope, receive, send)  # type: ignore[arg-type]


def register_error_handlers(app: Starlette,
                            on_error: OnError = lambda request, status, exc: None) -> None:
    """One table from exceptions to responses: the OpenAI envelope, never a bare 500 page."""

    async def pickspin(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PickspinError)
        on_error(request, exc.status, exc)
        return Response(json.dumps(exc.envelope()), status_code=exc.status, media_type=JSON)

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        on_error(request, exc.status_code, exc)
        message, code = HTTP_CODES.get(exc.status_code, (exc.detail, None))
        return error_response(exc.status_code, message, "invalid_request_error", code,
                              headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # the client gets no internal text, only an id to quote; the log has the details
        request_id = request.headers.get("x-request-id") or f"err-{uuid.uuid4().hex[:16]}"
        log.error("unexpected error answering %s %s (request id %s)", request.method,
                  request.url.path, request_id, exc_info=exc)
        on_error(request, 500, exc)
        return error_response(500, f"internal error (request id {request_id})",
                              "server_error", "internal")

    app.add_exception_handler(PickspinError, pickspin)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)
