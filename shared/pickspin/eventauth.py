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
from collections.abc import Callable
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from pickspin.errors import Unauthorized

TOKEN_ENV = "PICKSPIN_INTERNAL_TOKEN"
SIGNATURE, SIGNED_AT = "pickspinsig", "pickspinsigtime"
REPLY_TO = "pickspinreplyto"  # pickspin.replyto's extension, covered by the signature
MAX_SKEW = 300.0

log = logging.getLogger("pickspin.auth")


def _canonical_data(data: Any) -> bytes:
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

    def _mac(self, event: CloudEvent, signed_at: str) -> str:
        assert self.token is not None
        parts = [str(event.get_id()).encode(), str(event.get_type()).encode(),
                 str(event.get_source()).encode(), signed_at.encode(),
                 hashlib.sha256(_canonical_data(event.get_data())).digest()]
        # the broker path's return address is signed too (absent: the message is unchanged)
        if (sink := event.get_attributes().get(REPLY_TO)) is not None:
            parts.append(f"{REPLY_TO}={sink}".encode())
        message = b"\n".join(parts)
        return hmac.new(self.token.encode(), message, hashlib.sha256).hexdigest()

    def sign(self, event: CloudEvent) -> CloudEvent:
        """The same event with the signature extensions (unchanged without a token)."""
        if self.token is None:
            return event
        attributes = dict(event.get_attributes())
        attributes.pop(SIGNATURE, None)
        signed_at = f"{self.clock():.3f}"
        attributes[SIGNED_AT] = signed_at
        unsigned = CloudEvent(attributes, event.get_data())
        attributes[SIGNATURE] = self._mac(unsigned, signed_at)
        return CloudEvent(attributes, event.get_data())

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
        if not hmac.compare_digest(signature, self._mac(event, signed_at)):
            raise Unauthorized("the event's signature does not match")

    def warn_if_open(self, what: str) -> None:
        if self.token is None:
            log.warning("%s: %s is not set: internal events are not authenticated (anyone "
                        "who can reach this endpoint can send them)", what, TOKEN_ENV)
