"""Forward a request to the chosen backend, falling back to the next candidate when the
backend fails before its first token (connection refused, 5xx, timeout).

`BackendProxy` runs on the event loop (aiohttp: the gateway's and the broker path's
responder's) and keeps one pool of keep-alive connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from pickspin.adapters import asynchttp
from pickspin.core.errors import BackendFailed
from pickspin.core.events import Candidate

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
    """An answer that has started: the candidate that gave it and what failed before it.
    A streamed answer's rest is read with `astream()`."""

    candidate: Candidate
    status: int
    headers: dict[str, str]
    started: float
    ttft: float | None
    fallback: list[str]
    body: bytes = b""
    first_chunk: bytes = b""
    chunks: int = 0
    #: why the stream stopped before its end (`[DONE]`), if it did
    broken: str | None = None
    _tail: bytes = b""
    _response: aiohttp.ClientResponse | None = None

    async def astream(self) -> AsyncGenerator[bytes, None]:
        """The SSE bytes, first chunk included; counts `data:` events as they pass. A stream
        that breaks off (the connection lost, or closed before `data: [DONE]`) stops with
        `broken` set to why, instead of raising."""
        try:
            self._observe(self.first_chunk)
            yield self.first_chunk
            if self._response is not None:
                content = self._response.content
                while chunk := await content.readany():
                    self._observe(chunk)
                    yield chunk
            if DONE not in self._tail:
                self.broken = "ended-before-done"
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.broken = _reason(exc)
        finally:
            await self.aclose()

    def _observe(self, chunk: bytes) -> None:
        self.chunks += _count_events(chunk)
        self._tail = (self._tail + chunk)[-64:]

    async def aclose(self) -> None:
        if self._response is not None:
            response, self._response = self._response, None
            if self.broken is None and response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()


DONE = b"data: [DONE]"


def _reason(exc: BaseException) -> str:
    """What a failure is called in `fallback` and `broken`: httpx's words, which name the
    failures in `x-pickspin-fallback`, the log and `STALE_CONNECTION`."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "refused"
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "RemoteProtocolError"  # closed before the answer, or in the middle of it
    if isinstance(exc, aiohttp.ClientOSError):
        return "ReadError"  # reset by the peer
    return type(exc).__name__


def _count_events(chunk: bytes) -> int:
    return chunk.count(b"data: ") - chunk.count(b"data: [DONE]")


class BackendProxy:
    """The backends on the event loop (aiohttp, at about a third of httpx's CPU per request:
    `pickspin.adapters.asynchttp`), over one pool made on first use."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        connect_timeout: float = 2.0,
        first_token_timeout: float = 60.0,
        clock: Callable[[], float] = time.perf_counter,
        explain: Explain = lambda service, reason, since: reason,
    ) -> None:
        self._session = session
        # connecting, then each read (the first token included)
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout,
                                              sock_read=first_token_timeout)
        self._clock = clock
        self._explain = explain  # blocking (it may wait for a crash report): run on a thread

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: it belongs to the running loop
            self._session = asynchttp.session(limit=POOL_SIZE)
        return self._session

    async def forward(
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
            payload = json.dumps({**body, "model": candidate.model}).encode()
            url = candidate.endpoint.rstrip("/") + PATHS[kind]
            stream = bool(body.get("stream"))
            try:
                return await self._try_twice(url, payload, stream, candidate, started, failed)
            except _Failed as exc:
                inflight(candidate.service, -1)
                reason = str(exc)
                if reason in CONNECTION_LOST:
                    reason = await asyncio.to_thread(self._explain, candidate.service,
                                                     reason, since)
                failed.append(f"{candidate.service}={reason}")
        raise BackendFailed("every candidate backend failed: " + ", ".join(failed),
                            reasons=tuple(f.split("=", 1)[1] for f in failed))

    async def _try_twice(self, url: str, payload: bytes, stream: bool, candidate: Candidate,
                         started: float, failed: list[str]) -> Upstream:
        """A pooled keep-alive connection the backend closed meanwhile (a replica drained,
        a server restarted) fails before anything was answered: retry once, fresh."""
        try:
            return await self._try(url, payload, stream, candidate, started, failed)
        except _Failed as exc:
            if str(exc) not in STALE_CONNECTION:
                raise
        return await self._try(url, payload, stream, candidate, started, failed)

    async def _try(self, url: str, payload: bytes, stream: bool, candidate: Candidate,
                   started: float, failed: list[str]) -> Upstream:
        try:
            response = await self._http().post(url, data=payload, headers=JSON_BODY,
                                               timeout=self._timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Failed(_reason(exc)) from None
        if response.status >= 500:
            response.close()
            raise _Failed(f"http-{response.status}")
        headers = {"content-type": response.headers.get("content-type", "application/json")}
        up = Upstream(candidate, response.status, headers, started, None, list(failed))
        try:
            if response.status == 200 and stream:
                up.first_chunk = await response.content.readany()
                if not up.first_chunk:
                    response.close()
                    raise _Failed("empty-stream")
                up.ttft = self._clock() - started
                up._response = response
            else:
                up.body = await response.read()
                response.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise _Failed(_reason(exc)) from None
        return up

    async def aclose(self) -> None:
        if self._session is not None:
            await asynchttp.close_session(self._session)
            self._session = None


POOL_SIZE = 512
JSON_BODY = {"content-type": "application/json"}


class _Failed(Exception):
    """This candidate failed before its first token; the reason is the message."""
