"""Knative Eventing's delivery rules, as the local broker applies them: which Trigger an
event passes, which failures are retried and after how long, where an undeliverable event
goes (knative/eventing: pkg/kncloudevents/retries.go, pkg/eventfilter/attributes/filter.go,
pkg/kncloudevents/event_dispatcher.go)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from cloudevents.core.v1.event import CloudEvent

ERROR_DEST, ERROR_CODE, ERROR_DATA = "knativeerrordest", "knativeerrorcode", "knativeerrordata"
ERROR_DATA_MAX = 1024
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def iso_seconds(text: str) -> float:
    """An ISO-8601 duration (`PT0.5S`, `PT1M`, `P1DT2H`) in seconds."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Delivery:
    """A DeliverySpec: retries, back-off and where undeliverable events go."""

    retry: int = 0
    policy: str | None = None
    delay: float = 0.0
    dead_letter: str | None = None

    def backoff(self, n: int) -> float:
        """Seconds to wait before retry `n` (0-based)."""
        if self.policy == "exponential":
            return float(self.delay * 2**n)
        if self.policy == "linear":
            return self.delay * n
        return 0.0


@dataclass(frozen=True)
class Route:
    """One Trigger: its filter, its subscriber's URL and its delivery."""

    name: str
    attributes: Mapping[str, str]
    subscriber: str
    delivery: Delivery

    def passes(self, event: CloudEvent) -> bool:
        context = {k: str(v) for k, v in event.get_attributes().items() if v is not None}
        return all(k in context and (v == "" or context[k] == v)
                   for k, v in self.attributes.items())


@dataclass(frozen=True)
class Attempt:
    """One POST the broker made: to a subscriber, or to a dead-letter sink."""

    route: str
    url: str
    event_type: str
    event_id: str
    status: int | None
    at: float
    dead_letter: bool = False


def destination(dest: Mapping[str, Any], services: Mapping[str, str]) -> str | None:
    """A Destination (`ref` to a Service and/or `uri`) → URL; None if the ref is unknown."""
    uri = dest.get("uri")
    ref = dest.get("ref")
    if ref is None:
        return str(uri) if uri else None
    base = services.get(ref["name"])
    if base is None:
        return None
    return urljoin(base.rstrip("/") + "/", str(uri).lstrip("/")) if uri else base


def delivery_of(spec: Mapping[str, Any], services: Mapping[str, str]) -> Delivery:
    sink = spec.get("deadLetterSink")
    dead_letter = destination(sink, services) if sink else None
    if sink and dead_letter is None:
        raise ValueError(f"dead-letter sink {sink} is not among the known services")
    return Delivery(retry=int(spec.get("retry", 0)), policy=spec.get("backoffPolicy"),
                    delay=iso_seconds(spec["backoffDelay"]) if spec.get("backoffDelay") else 0.0,
                    dead_letter=dead_letter)
