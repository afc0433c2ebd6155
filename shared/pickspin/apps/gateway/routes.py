"""The gateway's HTTP face: its Starlette app, and what each request meets before `Gateway`
does: authentication, back-pressure, drain, and the log line of an error answer."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pickspin.adapters.httpfunction import error_response
from pickspin.apps.gateway import accesslog
from pickspin.apps.gateway.app import Gateway

NO_KEY = ("You didn't provide an API key. You need to provide your API key in an "
          "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
RETRY = {"retry-after": "1"}


class Guard:
    """The checks in front of the routes (pure ASGI, nothing built for a request that
    passes): API keys on `/v1/*`, 429 past the in-flight limit, 503 while draining."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.keys = tuple(k.encode() for k in gateway.wiring.api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await refusal(scope, receive, send)
        if scope["path"].startswith("/v1/"):
            log_error(Headers(scope=scope), scope["path"], refusal.status_code, None)

    def refusal(self, scope: Scope) -> Response | None:
        gateway, path = self.gateway, scope["path"]
        if self.keys and path.startswith("/v1/"):
            scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
            key = key.strip()
            if scheme.lower() != "bearer" or not key:
                return error_response(401, NO_KEY, "invalid_request_error", None)
            if not any(hmac.compare_digest(key.encode(), k) for k in self.keys):
                shown = key[:3] + "*" * 4 + key[-2:] if len(key) > 8 else "*" * len(key)
                return error_response(401, f"Incorrect API key provided: {shown}.",
                                      "invalid_request_error", "invalid_api_key")
        if scope["method"] == "POST" and gateway.active >= gateway.wiring.max_inflight:
            return error_response(429, f"the gateway is answering {gateway.active} requests, "
                                  "its limit; retry shortly", "rate_limit_error",
                                  "too_many_requests", headers=RETRY)
        if gateway.draining and path not in ("/metrics", "/v1/models"):
            return error_response(503, "the gateway is shutting down; retry on another "
                                  "replica", "service_unavailable", "draining", headers=RETRY)
        return None


def log_error(headers: Mapping[str, str], path: str, status: int,
              error: Exception | None) -> None:
    """The log line of a `/v1/*` request answered with an error before any backend was
    tried (the others get theirs when their answer ends), with the internal detail the
    client is not shown."""
    accesslog.request_line(
        request_id=headers.get("x-request-id"), status=status,
        outcome="rejected" if status < 500 else "error", path=path,
        code=getattr(error, "code", None), reason=getattr(error, "message", None),
        detail=getattr(error, "detail", None))


def on_error(request: Request, status: int, exc: Exception) -> None:
    """`StarletteFunction.on_error` for the gateway: a line for each `/v1/*` error."""
    if request.url.path.startswith("/v1/"):
        log_error(request.headers, request.url.path, status, exc)


def create_app(gateway: Gateway) -> Starlette:
    async def chat(request: Request) -> Response:
        return await gateway.serve(request, "chat")

    async def completions(request: Request) -> Response:
        return await gateway.serve(request, "completion")

    async def models(request: Request) -> Response:
        return gateway.models()

    async def metrics(request: Request) -> Response:
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ])
    app.add_middleware(Guard, gateway=gateway)
    return app
