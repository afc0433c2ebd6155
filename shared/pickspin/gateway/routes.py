"""The gateway's HTTP face: its Flask app, and what each request meets before `Gateway`
does: authentication, back-pressure, drain, and the log line of an error answer."""

from __future__ import annotations

import hmac
import json

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pickspin.function import error_envelope
from pickspin.gateway import accesslog
from pickspin.gateway.app import Gateway

NO_KEY = ("You didn't provide an API key. You need to provide your API key in an "
          "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


def refusal(status: int, message: str, type_: str, code: str | None,
            retry_after: bool = False) -> Response:
    """An answer in the OpenAI envelope, with `Retry-After: 1` when trying again helps."""
    return Response(json.dumps(error_envelope(message, type_, code)), status=status,
                    mimetype="application/json",
                    headers={"retry-after": "1"} if retry_after else None)


def create_app(gateway: Gateway) -> Flask:
    app = Flask("pickspin-gateway")

    @app.after_request
    def _log_errors(response: Response) -> Response:
        """A line for a request answered with an error before any backend was tried (the
        others get theirs when their answer ends)."""
        error = g.get("pickspin_error")
        if response.status_code >= 400 and request.path.startswith("/v1/"):
            accesslog.request_line(
                request_id=request.headers.get("x-request-id"), status=response.status_code,
                outcome="rejected" if response.status_code < 500 else "error",
                path=request.path, code=getattr(error, "code", None),
                reason=getattr(error, "message", None), detail=getattr(error, "detail", None))
        return response

    @app.before_request
    def _authenticate() -> Response | None:
        keys = gateway.wiring.api_keys
        if not keys or not request.path.startswith("/v1/"):
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return refusal(401, NO_KEY, "invalid_request_error", None)
        if not any(hmac.compare_digest(key.strip().encode(), k.encode()) for k in keys):
            shown = key[:3] + "*" * 4 + key[-2:] if len(key) > 8 else "*" * len(key)
            return refusal(401, f"Incorrect API key provided: {shown}.",
                           "invalid_request_error", "invalid_api_key")
        return None

    @app.before_request
    def _push_back_when_full() -> Response | None:
        if request.method != "POST" or gateway.active < gateway.wiring.max_inflight:
            return None
        return refusal(429, f"the gateway is answering {gateway.active} requests, its limit; "
                       "retry shortly", "rate_limit_error", "too_many_requests",
                       retry_after=True)

    @app.before_request
    def _refuse_while_draining() -> Response | None:
        if not gateway.draining or request.path in ("/metrics", "/v1/models"):
            return None
        return refusal(503, "the gateway is shutting down; retry on another replica",
                       "service_unavailable", "draining", retry_after=True)

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        return gateway.serve("chat")

    @app.post("/v1/completions")
    def completions() -> Response:
        return gateway.serve("completion")

    @app.get("/v1/models")
    def models() -> Response:
        return gateway.models()

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(gateway.metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return app
