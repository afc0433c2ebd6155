"""Who may send the internal events: a shared token, proved by an HMAC on each event.

The classifier, selector and telemetry take CloudEvents on plain HTTP endpoints, and a
forged `telemetry.snapshot` would steer every route. Each sender that holds the run's
token (`PICKSPIN_INTERNAL_TOKEN`: a Secret in a cluster, a random value per `pickspin up`
locally) adds two extension attributes: `pickspinsigtime` (its clock, seconds) and
`pickspinsig`, an HMAC-SHA256 over the event's id, type, source, that time and its data
(and its `pickspinreplyto` sink, when it names one).
Extensions travel through a Knative Broker unchanged, so the proof survives the Trigger
path as well as direct calls; the token itself never leaves the sender. A receiver with
the token refuses (401) an event without a valid signature or signed more than `MAX_SKEW`
seconds away from its own clock.

The data are signed in one canonical form (compact JSON with sorted keys), so the proof
survives a hop that decodes and re-encodes the event (the local broker, a Knative Broker).
A sender in binary mode puts exactly those signed bytes on the wire (`Signer.encode`,
`sign(wire=True)`): the data are serialised once, not once to sign and again to send.

>>> signer = Signer("s3cret")
>>> event = signer.sign(make_event(EventType.PING, {"tick": True}, "/tests"))  # doctest: +SKIP
>>> signer.verify(event)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, to_binary_event
from cloudevents.core.v1.event import CloudEvent

from pickspin.core.errors import Unauthorized

TOKEN_ENV = "PICKSPIN_INTERNAL_TOKEN"
SIGNATURE, SIGNED_AT = "pickspinsig", "pickspinsigtime"
REPLY_TO = "pickspinreplyto"  # pickspin.core.replyto's extension, covered by the signature
MAX_SKEW = 300.0

log = logging.getLogger("pickspin.auth")


def canonical_data(data: Any) -> bytes:
    """The bytes of an event's data that its signature covers (JSON: compact, sorted keys)."""
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer:
    """Signs and verifies events with one shared token; without a token it does neither
    (an open installation, which says so once at start)."""

    def __init__(self, token: str | None, clock: Callable[[], float] = time.time) -> None:
        self.token = token or None
        self.clock = clock

    def _mac(self, attributes: Mapping[str, Any], signed_at: str, data: bytes) -> str:
        assert self.token is not None
        parts = [str(attributes.get("id")).encode(), str(attributes.get("type")).encode(),
                 str(attributes.get("source")).encode(), signed_at.encode(),
                 hashlib.sha256(data).digest()]
        # the broker path's return address is signed too (absent: the message is unchanged)
        if (sink := attributes.get(REPLY_TO)) is not None:
            parts.append(f"{REPLY_TO}={sink}".encode())
        message = b"\n".join(parts)
        return hmac.new(self.token.encode(), message, hashlib.sha256).hexdigest()

    def _signed(self, event: CloudEvent, data: bytes) -> dict[str, Any]:
        """The event's attributes with the signature extensions over `data`."""
        assert self.token is not None
        attributes = dict(event.get_attributes())
        attributes.pop(SIGNATURE, None)
        attributes[SIGNED_AT] = signed_at = f"{self.clock():.3f}"
        attributes[SIGNATURE] = self._mac(attributes, signed_at, data)
        return attributes

    def sign(self, event: CloudEvent, *, wire: bool = False) -> CloudEvent:
        """The same event with the signature extensions (unchanged without a token).

        `wire=True` (binary mode): its data become the bytes the signature covers, so the
        binding puts them in the body as they are and the data are serialised only once."""
        if self.token is None:
            return event
        data = canonical_data(event.get_data())
        return CloudEvent(self._signed(event, data),
                          (data or None) if wire else event.get_data())

    def encode(self, event: CloudEvent) -> HTTPMessage:
        """The signed event as a binary-mode HTTP message (`sign(event, wire=True)`)."""
        return to_binary_event(self.sign(event, wire=True))

    def verify(self, event: CloudEvent) -> None:
        """Raise `Unauthorized` unless the event carries a valid, recent signature."""
        if self.token is None:
            return
        attributes = event.get_attributes()
        signature, signed_at = attributes.get(SIGNATURE), attributes.get(SIGNED_AT)
        if not isinstance(signature, str) or not isinstance(signed_at, str):
            raise Unauthorized("this endpoint takes only signed pickspin events")
        try:
            skew = abs(self.clock() - float(signed_at))
        except ValueError:
            raise Unauthorized("the event's signature time is not a number") from None
        if skew > MAX_SKEW:
            raise Unauthorized(f"the event was signed {skew:.0f} s away from this clock")
        expected = self._mac(attributes, signed_at, canonical_data(event.get_data()))
        if not hmac.compare_digest(signature, expected):
            raise Unauthorized("the event's signature does not match")

    def warn_if_open(self, what: str) -> None:
        if self.token is None:
            log.warning("%s: %s is not set: internal events are not authenticated (anyone "
                        "who can reach this endpoint can send them)", what, TOKEN_ENV)
