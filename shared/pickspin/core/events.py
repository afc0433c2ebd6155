"""CloudEvent types `io.pickspin.*`, their data models, and HTTP encoding.

The data models are the published contract: `make schemas` writes their JSON schemas to
`shared/pickspin/schemas/` and a test keeps the two in step.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

from cloudevents.core.bindings.http import (
    HTTPMessage,
    from_http_event,
    to_binary_event,
    to_structured_event,
)
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pickspin.core.errors import InvalidEvent


class EventType(StrEnum):
    PROMPT_RECEIVED = "io.pickspin.prompt.received"
    PROMPT_CLASSIFIED = "io.pickspin.prompt.classified"
    ROUTE_SELECTED = "io.pickspin.route.selected"
    INFERENCE_COMPLETED = "io.pickspin.inference.completed"
    # The broker path's answer, sent to the sink the producer named (`pickspin.core.replyto`).
    PROMPT_ANSWERED = "io.pickspin.prompt.answered"
    TELEMETRY_SNAPSHOT = "io.pickspin.telemetry.snapshot"
    # A selector replica asking telemetry for its latest snapshot (reply: telemetry.snapshot).
    TELEMETRY_REQUESTED = "io.pickspin.telemetry.requested"
    # A PingSource tick (Knative sends `dev.knative.sources.ping`).
    PING = "dev.knative.sources.ping"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RouteRequest(_Data):
    """What the caller asked for, carried from the gateway to the selector."""

    profile: str | None = None
    router: str | None = None
    model: str | None = Field(default=None, description="a concrete model: skip Pick")
    strategy: str | None = None
    exclude: tuple[str, ...] = Field(default=(), description="services not to choose")


class Ask(_Data):
    """The broker path: what the responder asks the chosen backend (one user message, not
    streamed), carried from `prompt.received` through `prompt.classified` and
    `route.selected` because each hop's reply is a new event."""

    prompt: str
    max_tokens: int | None = Field(default=None, ge=1, le=65536)
    temperature: float | None = Field(default=None, ge=0, le=2)


class PromptReceived(_Data):
    request_id: str
    prompt: str
    route: RouteRequest = Field(default_factory=RouteRequest)
    # the broker path only: generation settings for the answer (the gateway path ignores them)
    max_tokens: int | None = Field(default=None, ge=1, le=65536)
    temperature: float | None = Field(default=None, ge=0, le=2)


class PromptClassified(_Data):
    request_id: str
    complexity: Literal["low", "medium", "high"]
    probabilities: dict[str, float]
    router: str
    elapsed_ms: float
    truncated: bool = False
    route: RouteRequest = Field(default_factory=RouteRequest)
    # calibrated P(the tier's model answers well) per tier (small, medium, large); empty when
    # the router has no such estimate (keyword rules)
    success: dict[str, float] = Field(default_factory=dict)
    # the hybrid's short-prompt rule settled the class: the selector applies the profile's
    # `settledTiers` floor instead of its relevance bound
    settled: bool = False
    # the broker path only (a `pickspinreplyto` sink was named): what to ask the backend
    ask: Ask | None = None


class ScoreBreakdown(_Data):
    """Paper Eq. 2 for one service: raw inputs, normalised terms and the weighted sum."""

    relevance: float
    latency: float
    cost: float
    latency_seconds: float
    cost_per_query: float
    score: float
    # what trading down gave up: the best R̂ the request could have without a cold start
    # (the best warm candidate of an allowed tier; of all, when none is warm or a model was
    # named) minus this one's, 0 for a better one; the profile's bound limits it
    relevance_gap: float = 0.0


class Candidate(_Data):
    service: str
    model: str
    backend: str
    endpoint: str
    breakdown: ScoreBreakdown
    warm: bool = True
    #: warm but without a free slot: a request sent there queues
    full: bool = False


class RouteSelected(_Data):
    request_id: str
    profile: str
    strategy: str
    complexity: str
    router: str
    chosen: Candidate
    runners_up: tuple[Candidate, ...] = ()
    #: warm services outside the floor or full (`selection.Decision.overflow`)
    overflow: tuple[Candidate, ...] = ()
    elapsed_ms: float = 0.0
    # the broker path only: what the responder asks the chosen backend
    ask: Ask | None = None


class InferenceCompleted(_Data):
    request_id: str
    service: str
    model: str
    backend: str
    outcome: Literal["success", "error"]
    ttft_seconds: float | None = None
    latency_seconds: float
    completion_tokens: int = 0
    cold_start: bool = False
    fallback: tuple[str, ...] = ()
    finished_at: float = Field(description="unix time when the response ended")


class Usage(_Data):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class AnswerError(_Data):
    """Why a broker-path prompt got no answer, in the OpenAI error envelope's terms."""

    message: str
    type: str
    code: str | None = None
    status: int | None = Field(default=None, description="the backend's HTTP status, if any")


class PromptAnswered(_Data):
    """The broker path's answer to one `prompt.received`, sent to the producer's sink."""

    request_id: str = Field(description="the request_id of the prompt.received it answers")
    outcome: Literal["success", "error"]
    text: str | None = Field(default=None, description="the completion (outcome success)")
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: AnswerError | None = None
    service: str
    model: str
    backend: str
    profile: str
    complexity: str
    router: str
    score: float
    fallback: tuple[str, ...] = ()
    latency_seconds: float
    finished_at: float = Field(description="unix time when the answer was complete")


class ServiceStats(_Data):
    """Windowed statistics of one service, as the selector sees them."""

    requests: int = 0
    rate_per_second: float = 0.0
    latency_seconds: float | None = Field(default=None, description="mean end-to-end latency")
    latency_p50_seconds: float | None = None
    latency_p99_seconds: float | None = None
    ttft_seconds: float | None = Field(default=None, description="mean time to first token")
    ttft_p50_seconds: float | None = None
    ttft_p99_seconds: float | None = None
    time_per_token_seconds: float | None = Field(
        default=None, description="mean decode time per output token after the first"
    )
    success_ratio: float | None = None
    cost_per_query: float | None = None
    healthy: bool = True
    replicas: int | None = None
    ready_replicas: int | None = None
    running: int | None = Field(default=None, description="requests the backend is serving")
    waiting: int | None = Field(default=None, description="requests queued at the backend")
    pending: int | None = Field(
        default=None, description="requests the router holds for this service while it is cold"
    )


class TelemetrySnapshot(_Data):
    generated_at: float
    window_seconds: float
    services: dict[str, ServiceStats]


class TelemetryRequested(_Data):
    """Ask for the latest snapshot: one at most `max_age_seconds` old, computed if need be."""

    max_age_seconds: float = Field(ge=0)


DATA_MODELS: dict[EventType, type[_Data]] = {
    EventType.PROMPT_RECEIVED: PromptReceived,
    EventType.PROMPT_CLASSIFIED: PromptClassified,
    EventType.ROUTE_SELECTED: RouteSelected,
    EventType.INFERENCE_COMPLETED: InferenceCompleted,
    EventType.PROMPT_ANSWERED: PromptAnswered,
    EventType.TELEMETRY_SNAPSHOT: TelemetrySnapshot,
    EventType.TELEMETRY_REQUESTED: TelemetryRequested,
}

D = TypeVar("D", bound=_Data)


def make_event(
    type_: EventType, data: _Data | Mapping[str, Any], source: str, **extensions: str
) -> CloudEvent:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    attributes: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": type_.value,
        "source": source,
        "datacontenttype": "application/json",
        **extensions,
    }
    return CloudEvent(attributes, payload)


def encode(event: CloudEvent, mode: Literal["binary", "structured"] = "binary") -> HTTPMessage:
    return to_binary_event(event) if mode == "binary" else to_structured_event(event)


def decode(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """An HTTP request or response → CloudEvent, in binary or structured mode."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not any(k.startswith("ce-") for k in lowered):
        content_type = lowered.get("content-type", "")
        if not content_type.startswith("application/cloudevents"):
            raise InvalidEvent(
                "not a CloudEvent: send ce-* headers (binary mode) or "
                "content-type application/cloudevents+json (structured mode)"
            )
    try:
        event = from_http_event(HTTPMessage(headers=lowered, body=body))
    except (CloudEventValidationError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"invalid CloudEvent: {exc}") from None
    if not isinstance(event, CloudEvent):
        raise InvalidEvent("only CloudEvents spec version 1.0 is accepted")
    return event


def data_of(event: CloudEvent, model: type[D]) -> D:
    """Validate an event's data against its model; a 400 lists every problem."""
    raw = event.get_data()
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidEvent(f"{event.get_type()}: data is not JSON") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidEvent(f"{event.get_type()}: invalid data: {problems}") from None


def json_schemas() -> dict[str, dict[str, Any]]:
    """Event type → JSON schema of its data."""
    return {t.value: m.model_json_schema() for t, m in DATA_MODELS.items()}


SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Publish each event type's data schema as `<type>.json` (`make schemas`)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for type_, schema in json_schemas().items():
        path = folder / f"{type_}.json"
        path.write_text(json.dumps({"$id": type_, **schema}, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas():
        print(written_path)
