"""The broker path's return address: the `pickspinreplyto` extension a producer puts on its
`io.pickspin.prompt.received`, and how each hop passes it on.

A Knative Broker re-injects a subscriber's reply as a new event, so nothing the producer set
survives a hop by itself: the classifier and the selector copy the extension onto their
replies (`carry`), and the responder sends the `io.pickspin.prompt.answered` there. The
extension is covered by the event's HMAC (`pickspin.core.eventauth`), so a captured event cannot
be replayed with another sink.

>>> sink_of(make_event(EventType.PROMPT_RECEIVED, {...}, "/me",
...                    pickspinreplyto="http://me.example/answers"))  # doctest: +SKIP
'http://me.example/answers'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cloudevents.core.v1.event import CloudEvent

from pickspin.core.errors import InvalidEvent
from pickspin.core.eventauth import REPLY_TO

MAX_SINK_CHARS = 2048
# Statuses Knative's dispatcher retries besides 5xx (knative/eventing pkg/kncloudevents/
# retries.go, `SelectiveRetry`); any other non-2xx is final.
RETRIED = frozenset({404, 408, 409, 429})


def retryable(status: int | None) -> bool:
    """Whether Knative retries a delivery that ended so (None: no answer at all): what the
    responder tells the Broker about a sink, and what the local broker does."""
    return status is None or status >= 500 or status in RETRIED


def reply_to(event: CloudEvent) -> str | None:
    """The raw extension value, or None when the event names no sink."""
    value = event.get_attributes().get(REPLY_TO)
    return None if value is None else str(value)


def check_sink(value: str | None) -> str:
    """An absolute http(s) URL with a host and no credentials, else `InvalidEvent` (400)."""
    if value is None or not value.strip():
        raise InvalidEvent(f"no {REPLY_TO} extension: name the sink the answer goes to")
    if len(value) > MAX_SINK_CHARS:
        raise InvalidEvent(f"{REPLY_TO}: longer than {MAX_SINK_CHARS} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise InvalidEvent(f"{REPLY_TO}: not a URL: {value[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidEvent(f"{REPLY_TO}: must be an absolute http(s) URL, not {value[:200]!r}")
    if parts.username or parts.password:
        raise InvalidEvent(f"{REPLY_TO}: credentials in the URL are not accepted")
    if any(c.isspace() for c in value):
        raise InvalidEvent(f"{REPLY_TO}: whitespace in the URL")
    return value


def sink_of(event: CloudEvent) -> str:
    """The validated sink the event names (`InvalidEvent` when missing or malformed)."""
    return check_sink(reply_to(event))


def carry(incoming: CloudEvent, reply: CloudEvent) -> CloudEvent:
    """`reply` with the incoming event's sink, if it named one (sign after this)."""
    sink = reply_to(incoming)
    if sink is None:
        return reply
    return CloudEvent({**reply.get_attributes(), REPLY_TO: sink}, reply.get_data())
