"""CloudEvents over HTTP between the functions: request/reply calls, and emitting to K_SINK.

Calls are binary mode; replies are decoded in either mode (func_python.cloudevent answers in
binary or structured mode). Receiving is func-python's job (`pickspin.adapters.function`).
`EventClient` blocks (threads, the selector's look-up, the emitter); the same request/reply
for code on the event loop (the gateway's Pick) is
`pickspin.adapters.asynchttp.AsyncEventClient`."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Mapping

import httpx
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from pickspin.core.errors import (
    InvalidEvent,
    PickspinError,
    RelayedError,
    Unreachable,
    UpstreamError,
)
from pickspin.core.eventauth import Signer
from pickspin.core.events import D, EventType, data_of, decode

log = logging.getLogger("pickspin.core.events")

class EventClient:
    """Request/reply and fire-and-forget CloudEvents over one pooled HTTP client."""

    def __init__(self, http: httpx.Client | None = None, timeout: float = 10.0,
                 token: str | None = None) -> None:
        self._http = http or httpx.Client(timeout=timeout)
        self.signer = Signer(token)  # signs what it sends when the run has a token

    def request(self, url: str, event: CloudEvent, expect: EventType) -> CloudEvent:
        """POST `event` and return the reply event of type `expect`."""
        message = self.signer.encode(event)
        try:
            reply = self._http.post(url, content=message.body, headers=message.headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{url} did not answer: {exc}") from None
        return reply_event(url, reply.status_code, reply.headers, reply.content, expect)

    def send(self, url: str, event: CloudEvent) -> int:
        message = self.signer.encode(event)
        return self._http.post(url, content=message.body, headers=message.headers).status_code

    def close(self) -> None:
        self._http.close()


def reply_event(url: str, status: int, headers: Mapping[str, str], body: bytes,
                 expect: EventType) -> CloudEvent:
    """The reply of a request/reply call, or the error it stands for."""
    if status != 200:
        raise _relayed(url, status, body)
    try:
        answer = decode(headers, body)
    except InvalidEvent as exc:
        raise UpstreamError(f"{url} replied without a valid CloudEvent: {exc}") from None
    if answer.get_type() != expect:
        raise UpstreamError(f"{url} replied {answer.get_type()!r}, expected {expect.value!r}")
    return answer


def reply_data(url: str, status: int, headers: Mapping[str, str], body: bytes,
               expect: EventType, model: type[D]) -> D:
    """`data_of(reply_event(...), model)`: the data of a request/reply call's reply. A
    binary-mode JSON reply of the expected type is validated straight from its body (the
    CloudEvents binding and a second JSON pass cost the gateway a third of a millisecond
    per request on a cold cache); anything else, and any data that does not validate, goes
    the whole way, and fails as it always did."""
    if (status == 200 and headers.get("ce-specversion") == "1.0"
            and headers.get("ce-type") == expect.value and headers.get("ce-id")
            and headers.get("ce-source")
            and (headers.get("content-type") or "").startswith("application/json")):
        try:
            return model.model_validate_json(body)
        except ValidationError:
            pass
    return data_of(reply_event(url, status, headers, body, expect), model)


def _relayed(url: str, status: int, body: bytes) -> PickspinError:
    """A function's error answer, passed on with its own status and code when it is one
    of ours (the caller's mistake stays a 4xx, no capacity stays a 503)."""
    try:
        error = json.loads(body)["error"]
        message, type_, code = str(error["message"]), str(error["type"]), error.get("code")
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode(errors="replace")
        return UpstreamError(f"{url} answered {status}: {text}")
    if status < 400 or (status >= 500 and status != 503):
        return UpstreamError(f"{url} answered {status}: {message}")
    return RelayedError(message, status=status, type_=type_, code=code,
                        param=error.get("param"))


class Emitter:
    """Sends events to a sink from a background thread, so callers are never delayed.

    The queue is bounded; when the sink is down events are dropped with a warning rather
    than growing memory without limit (durable numbers live in Prometheus).
    """

    def __init__(self, sink: str | None, client: EventClient | None = None,
                 capacity: int = 10_000, token: str | None = None) -> None:
        self.sink = sink
        self._client = client or EventClient(timeout=5.0, token=token)
        self._queue: queue.Queue[CloudEvent | None] = queue.Queue(maxsize=capacity)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="pickspin-emitter", daemon=True)
        if sink:
            self._thread.start()

    def emit(self, event: CloudEvent) -> None:
        if not self.sink:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        assert self.sink
        while (event := self._queue.get()) is not None:
            try:
                status = self._client.send(self.sink, event)
                if status >= 300:
                    raise UpstreamError(f"sink answered {status}")
                self.sent += 1
            except (httpx.HTTPError, UpstreamError) as exc:
                self.failed += 1
                log.warning("could not deliver %s to %s: %s", event.get_type(), self.sink, exc)
            finally:
                self._queue.task_done()

    def close(self) -> None:
        if self.sink and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)
        self._client.close()
