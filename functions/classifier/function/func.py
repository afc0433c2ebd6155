"""pickspin classifier: `io.pickspin.prompt.received` in, `io.pickspin.prompt.classified` out."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response, request

from pickspin.cehttp import event_from_request, event_response
from pickspin.errors import InvalidRequest
from pickspin.events import EventType, PromptClassified, PromptReceived, data_of, make_event
from pickspin.function import FlaskFunction
from pickspin.routers import RouterRegistry, build_registry
from pickspin.settings import Settings

SOURCE = "/pickspin/classifier"


class ClassifierFunction(FlaskFunction):
    registry: RouterRegistry | None = None
    default_router = ""

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        self.registry = registry = build_registry(settings)
        self.default_router = settings.routing.mode.value
        app = Flask("pickspin-classifier")

        @app.post("/")
        def classify() -> Response:
            event = event_from_request(request, EventType.PROMPT_RECEIVED)
            received = data_of(event, PromptReceived)
            name = received.route.router or self.default_router
            try:
                router = registry.get(name)
            except LookupError as exc:
                raise InvalidRequest(str(exc), param="router") from None
            result = router.timed(received.prompt)
            classified = PromptClassified(
                request_id=received.request_id,
                complexity=result.complexity,  # type: ignore[arg-type]
                probabilities=dict(result.probabilities),
                router=result.router,
                elapsed_ms=result.elapsed_ms,
                truncated=result.truncated,
                route=received.route,
            )
            return event_response(make_event(EventType.PROMPT_CLASSIFIED, classified, SOURCE))

        return app

    def ready(self) -> tuple[bool, str]:
        """Ready when the configured router loaded; other unavailable routers are named."""
        started, message = super().ready()
        if not started or self.registry is None:
            return False, message
        missing = self.registry.unavailable
        notes = "; ".join(f"{name}: {why}" for name, why in sorted(missing.items()))
        if self.default_router in missing:
            return False, f"the configured router is unavailable: {notes}"
        return True, f"OK ({notes})" if notes else "OK"


def new() -> ClassifierFunction:
    return ClassifierFunction()
