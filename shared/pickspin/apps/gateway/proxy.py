"""Forward a request to the chosen backend, falling back to the next candidate when the
backend fails before its first token (connection refused, 5xx, timeout).

`BackendProxy` blocks (httpx, for callers on threads); `AsyncBackendProxy` is the same
contract on the event loop (aiohttp, the gateway). Both keep one pool of keep-alive
connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

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
                self._observe(chunk)
                yield chunk
            self._ended()
        except httpx.HTTPError as exc:
            self.broken = _reason(exc)
        finally:
            self.close()

    def _observe(self, chunk: bytes) -> None:
        self.chunks += _count_events(chunk)
        self._tail = (self._tail + chunk)[-64:]

    def _ended(self) -> None:
        if DONE not in self._tail:
            self.broken = "ended-before-done"

    def _chunks(self) -> Iterator[bytes]:
        yield self.first_chunk
        yield from self.rest or ()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


@dataclass
class AsyncUpstream(Upstream):
    """An `Upstream` read on the event loop (aiohttp): `astream()` and `aclose()`."""

    _aresponse: aiohttp.ClientResponse | None = None

    async def astream(self) -> AsyncGenerator[bytes, None]:
        """`Upstream.stream` for the event loop."""
        try:
            self._observe(self.first_chunk)
            yield self.first_chunk
            if self._aresponse is not None:
                content = self._aresponse.content
                while chunk := await content.readany():
                    self._observe(chunk)
                    yield chunk
            self._ended()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.broken = _async_reason(exc)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._aresponse is not None:
            response, self._aresponse = self._aresponse, None
            if self.broken is None and response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()


DONE = b"data: [DONE]"


def _reason(exc: httpx.HTTPError) -> str:
    """What a failure is called in `fallback` and `broken`."""
    if isinstance(exc, httpx.ConnectError):
        return "refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return type(exc).__name__


def _async_reason(exc: BaseException) -> str:
    """`_reason` for aiohttp's errors, in the same words (httpx's, which name the failures
    in `x-pickspin-fallback`, the log and `STALE_CONNECTION`)."""
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
    def __init__(
        self,
        http: httpx.Client | None = None,
        *,
        connect_timeout: float = 2.0,
        first_token_timeout: float = 60.0,
        clock: Callable[[], float] = time.perf_counter,
        explain: Explain = lambda service, reason, since: reason,
    ) -> None:
        self._http = http or httpx.Client(limits=POOL)
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
        except httpx.HTTPError as exc:
            raise _Failed(_reason(exc)) from None
        if response.status_code >= 500:
            response.close()
            raise _Failed(f"http-{response.status_code}")
        headers = {"content-type": response.headers.get("content-type", "application/json")}
        up = Upstream(candidate, response.status_code, headers, started, None, list(failed))
        try:
            if response.status_code == 200 and payload.get("stream"):
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
        except httpx.HTTPError as exc:
            response.close()
            raise _Failed(_reason(exc)) from None
        return up

    def close(self) -> None:
        self._http.close()


class AsyncBackendProxy:
    """`BackendProxy` on the event loop (aiohttp): the same fallback, retry and failure
    names, at about a third of httpx's CPU per request (`pickspin.adapters.asynchttp`)."""

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
        # like httpx's: connecting, then each read (the first token included)
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
    ) -> AsyncUpstream:
        """`BackendProxy.forward`, awaited."""
        since = time.time()
        failed: list[str] = []
        for candidate in candidates:
            inflight(candidate.service, 1)
            payload = json.dumps({**body, "model": candidate.model}).encode()
            url = candidate.endpoint.rstrip("/") + PATHS[kind]
            stream = bool(body.get("stream"))
            try:
                try:
                    return await self._try(url, payload, stream, candidate, started, failed)
                except _Failed as exc:
                    if str(exc) not in STALE_CONNECTION:
                        raise
                return await self._try(url, payload, stream, candidate, started, failed)
            except _Failed as exc:
                inflight(candidate.service, -1)
                reason = str(exc)
                if reason in CONNECTION_LOST:
                    reason = await asyncio.to_thread(self._explain, candidate.service,
                                                     reason, since)
                failed.append(f"{candidate.service}={reason}")
        raise BackendFailed("every candidate backend failed: " + ", ".join(failed),
                            reasons=tuple(f.split("=", 1)[1] for f in failed))

    async def _try(self, url: str, payload: bytes, stream: bool, candidate: Candidate,
                   started: float, failed: list[str]) -> AsyncUpstream:
        try:
            response = await self._http().post(url, data=payload, headers=JSON_BODY,
                                               timeout=self._timeout)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Failed(_async_reason(exc)) from None
        if response.status >= 500:
            response.close()
            raise _Failed(f"http-{response.status}")
        headers = {"content-type": response.headers.get("content-type", "application/json")}
        up = AsyncUpstream(candidate, response.status, headers, started, None, list(failed))
        try:
            if response.status == 200 and stream:
                up.first_chunk = await response.content.readany()
                if not up.first_chunk:
                    response.close()
                    raise _Failed("empty-stream")
                up.ttft = self._clock() - started
                up._aresponse = response
            else:
                up.body = await response.read()
                response.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            response.close()
            raise _Failed(_async_reason(exc)) from None
        return up

    async def aclose(self) -> None:
        if self._session is not None:
            await asynchttp.close_session(self._session)
            self._session = None


POOL_SIZE = 512
POOL = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=128)
JSON_BODY = {"content-type": "application/json"}


class _Failed(Exception):
    """This candidate failed before its first token; the reason is the message."""
