"""One exception hierarchy, mapped once at the edge (OpenAI error envelope or HTTP 400)."""

from __future__ import annotations

from typing import Any


def error_envelope(message: str, type_: str, code: str | None,
                   param: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope: every error answer pickspin gives has this shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class PickspinError(Exception):
    """Base of every error pickspin raises on purpose."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        #: what only the log may show (internal URLs, exception text), never the client
        self.detail = detail

    def envelope(self) -> dict[str, Any]:
        """The OpenAI error envelope."""
        return error_envelope(self.message, self.type, self.code, self.param)


class ConfigError(PickspinError):
    """The settings file is wrong; carries every problem found, not just the first."""

    code = "invalid_config"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid pickspin config {source}:\n{listing}")


class InvalidRequest(PickspinError):
    """The caller sent something we cannot serve (HTTP 400)."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class InvalidEvent(InvalidRequest):
    """A CloudEvent that is malformed or of the wrong type."""

    code = "invalid_event"


class PayloadTooLarge(InvalidRequest):
    """A request body over the size limit (read up to the limit, never parsed)."""

    status = 413
    code = "request_too_large"


class Unauthorized(PickspinError):
    """No valid credentials: an API key at the gateway, a signed event at the functions."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class NoCandidate(PickspinError):
    """No healthy service with free capacity can take the request."""

    status = 503
    type = "service_unavailable"
    code = "no_capacity"


class BackendFailed(PickspinError):
    """Every candidate backend failed before the first token; `reasons` says how each did."""

    status = 502
    type = "upstream_error"
    code = "backend_failed"

    def __init__(self, message: str, *, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class UpstreamError(PickspinError):
    """A function the gateway depends on (classifier, selector) did not answer properly."""

    status = 502
    type = "upstream_error"
    code = "function_failed"


class Unreachable(UpstreamError):
    """A function could not be reached at all (not listening: starting or restarting)."""


class RelayedError(PickspinError):
    """An error another pickspin function answered with, passed on unchanged."""

    def __init__(self, message: str, *, status: int, type_: str, code: str | None,
                 param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status
        self.type = type_
        self.code = code
