"""Forward a request to the chosen backend, falling back to the next candidate when the
backend fails before its first token (connection refused, 5xx, timeout)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pickspin.errors import BackendFailed
from pickspin.events import Candidate

PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
# Failures that mean "the connection went away before any answer", safe to retry once.
STALE_CONNECTION = frozenset({"RemoteProtocolError", "ReadError", "WriteError"})
# Failures a backend process dying mid-answer shows as (worth asking why it went away).
CONNECTION_LOST = STALE_CONNECTION | {"empty-stream"}
# Failures where no backend process answered at all (worth waiting for, not an error).
UNREACHED = STALE_CONNECTION | {"refused"}
# (service, reason, since wall-clock) → the reason to report (e.g. what crashed)
Explain = Callable[[str, str, float], str]


@dataclass
class Upstream:
    """An answer that has started: the candidate that gave it and what failed before it."""

    candidate: Candidate
    status: int
    headers: dict[str, str]
    started: float
    ttft: float | None
    fallback: list[str]
    body: bytes = b""
    first_chunk: bytes = b""
    rest: Iterator[bytes] | None = None
    _response: httpx.Response | None = None
    chunks: int = 0
    #: why the stream stopped before its end (`[DONE]`), if it did
    broken: str | None = None
    _tail: bytes = b""

    def stream(self) -> Iterator[bytes]:
        """The SSE bytes, first chunk included; counts `data:` events as they pass. A stream
        that breaks off (the connection lost, or closed before `data: [DONE]`) stops with
        `broken` set to why, instead of raising."""
        try:
            for chunk in self._chunks():
                self.chunks += _count_events(chunk)
                self._tail = (self._tail + chunk)[-64:]
                yield chunk
            if DONE not in self._tail:
                self.broken = "ended-before-done"
        except httpx.TimeoutException:
            self.broken = "timeout"
        except httpx.HTTPError as exc:
            self.broken = type(exc).__name__
        finally:
            self.close()

    def _chunks(self) -> Iterator[bytes]:
        yield self.first_chunk
        yield from self.rest or ()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


DONE = b"data: [DONE]"


def _count_events(chunk: bytes) -> int:
    return chunk.count(b"data: ") - chunk.count(b"data: [DONE]")


class BackendProxy:
    def __init__(
        self,
        http: httpx.Client | None = None,
        *,
        connect_timeout: float = 2.0,
        first_token_timeout: float = 60.0,
        clock: Callable[[], float] = time.perf_counter,
        explain: Explain = lambda service, reason, since: reason,
    ) -> None:
        self._http = http or httpx.Client(
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128)
        )
        self._timeout = httpx.Timeout(first_token_timeout, connect=connect_timeout)
        self._clock = clock
        self._explain = explain

    def forward(
        self,
        kind: str,
        body: dict[str, Any],
        candidates: Sequence[Candidate],
        started: float,
        inflight: Callable[[str, int], None] = lambda service, delta: None,
    ) -> Upstream:
        """Try candidates in order; return the first that starts answering.

        `inflight(service, +1)` is called before each attempt and `(service, -1)` when it
        fails; the caller ends the successful one when its answer is done. A candidate whose
        connection was lost is reported with what `explain` finds (a crashed process, say).
        """
        since = time.time()
        failed: list[str] = []
        for candidate in candidates:
            inflight(candidate.service, 1)
            payload = {**body, "model": candidate.model}
            url = candidate.endpoint.rstrip("/") + PATHS[kind]
            try:
                upstream = self._try_twice(url, payload, candidate, started, failed)
            except _Failed as exc:
                inflight(candidate.service, -1)
                reason = str(exc)
                if reason in CONNECTION_LOST:
                    reason = self._explain(candidate.service, reason, since)
                failed.append(f"{candidate.service}={reason}")
                continue
            return upstream
        raise BackendFailed("every candidate backend failed: " + ", ".join(failed),
                            reasons=tuple(f.split("=", 1)[1] for f in failed))

    def _try_twice(self, url: str, payload: dict[str, Any], candidate: Candidate,
                   started: float, failed: list[str]) -> Upstream:
        """A pooled keep-alive connection the backend closed meanwhile (a replica drained,
        a server restarted) fails before anything was answered: retry once, fresh."""
        try:
            return self._try(url, payload, candidate, started, failed)
        except _Failed as exc:
            if str(exc) not in STALE_CONNECTION:
                raise
        return self._try(url, payload, candidate, started, failed)

    def _try(self, url: str, payload: dict[str, Any], candidate: Candidate,
             started: float, failed: list[str]) -> Upstream:
        request = self._http.build_request("POST", url, json=payload, timeout=self._timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.ConnectError:
            raise _Failed("refused") from None
        except httpx.TimeoutException:
            raise _Failed("timeout") from None
        except httpx.HTTPError as exc:
            raise _Failed(type(exc).__name__) from None
        if response.status_code >= 500:
            response.close()
            raise _Failed(f"http-{response.status_code}")
        headers = {"content-type": response.headers.get("content-type", "application/json")}
        up = Upstream(candidate, response.status_code, headers, started, None, list(failed))
        streaming = response.status_code == 200 and bool(payload.get("stream"))
        try:
            if streaming:
                chunks = response.iter_raw()
                up.first_chunk = next(chunks)
                up.ttft = self._clock() - started
                up.rest, up._response = chunks, response
            else:
                up.body = response.read()
                response.close()
        except StopIteration:
            response.close()
            raise _Failed("empty-stream") from None
        except httpx.TimeoutException:
            response.close()
            raise _Failed("timeout") from None
        except httpx.HTTPError as exc:
            response.close()
            raise _Failed(type(exc).__name__) from None
        return up

    def close(self) -> None:
        self._http.close()


class _Failed(Exception):
    """This candidate failed before its first token; the reason is the message."""
