"""HTTP on the event loop (the gateway's hot path): pooled aiohttp sessions, CloudEvent
request/reply calls to the other functions, and emitting events to a sink.

aiohttp, not httpx, here: measured on this project's 2-core machine against the same local
hypercorn server, one POST costs the caller about 0.3 ms of CPU with aiohttp, 0.75 ms with
httpx's `Client` and 1.2 ms with its `AsyncClient`. Blocking callers keep httpx
(`pickspin.adapters.cehttp`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from cloudevents.core.v1.event import CloudEvent

from pickspin.adapters.cehttp import reply_data
from pickspin.core.errors import Unreachable
from pickspin.core.eventauth import Signer
from pickspin.core.events import D, EventType

log = logging.getLogger("pickspin.core.events")


class AsyncEventClient:
    """`pickspin.adapters.cehttp.EventClient.request` for the event loop, over one pooled
    session: what the gateway's Pick needs of a reply is its data (`request_data`)."""

    def __init__(self, session: aiohttp.ClientSession | None = None, timeout: float = 10.0,
                 token: str | None = None) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.signer = Signer(token)

    def _http(self) -> aiohttp.ClientSession:
        """The session, made on first use (it belongs to the running event loop)."""
        if self._session is None:
            self._session = session(limit=256)
        return self._session

    async def request_data(self, url: str, event: CloudEvent, expect: EventType,
                           model: type[D]) -> D:
        """POST `event` and return the data of the reply event of type `expect`
        (`cehttp.reply_data`)."""
        message = self.signer.encode(event)
        try:
            async with self._http().post(url, data=message.body, headers=message.headers,
                                         timeout=self._timeout) as reply:
                body = await reply.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{url} did not answer: {type(exc).__name__}: {exc}") from None
        return reply_data(url, reply.status, reply.headers, body, expect, model)

    async def aclose(self) -> None:
        if self._session is not None:
            await close_session(self._session)
            self._session = None


def session(limit: int) -> aiohttp.ClientSession:
    """An aiohttp session for calls between pickspin's own processes and its backends:
    bodies passed as they are (no decompression), no cookies, `limit` pooled connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=4.0),
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)


async def close_session(session: aiohttp.ClientSession) -> None:
    """Close a session; one whose event loop has ended (a test's) has nothing left to close."""
    with contextlib.suppress(RuntimeError):
        await session.close()




class AsyncEmitter:
    """`pickspin.adapters.cehttp.Emitter` on the event loop: events go to the sink from one task, so
    callers are never delayed. The queue is bounded; when the sink is down events are
    dropped with a warning rather than growing memory without limit (durable numbers live
    in Prometheus)."""

    def __init__(self, sink: str | None, session: aiohttp.ClientSession | None = None,
                 capacity: int = 10_000, token: str | None = None,
                 timeout: float = 5.0) -> None:
        self.sink = sink
        self.signer = Signer(token)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._capacity = capacity
        self._queue: asyncio.Queue[CloudEvent | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def emit(self, event: CloudEvent) -> None:
        """Queue `event` for the sink (call it on the event loop)."""
        if not self.sink:
            return
        if self._queue is None:  # the queue and its task belong to the running loop
            self._queue = asyncio.Queue(maxsize=self._capacity)
            self._task = asyncio.get_running_loop().create_task(self._run(self.sink))
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self, sink: str) -> None:
        assert self._queue is not None
        http = self._session = self._session or session(limit=4)
        while (event := await self._queue.get()) is not None:
            message = self.signer.encode(event)
            try:
                async with http.post(sink, data=message.body, headers=message.headers,
                                     timeout=self._timeout) as reply:
                    await reply.read()
                    if reply.status >= 300:
                        raise aiohttp.ClientResponseError(
                            reply.request_info, (), status=reply.status,
                            message=f"sink answered {reply.status}")
                self.sent += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failed += 1
                log.warning("could not deliver %s to %s: %s", event.get_type(), sink, exc)

    async def aclose(self, grace: float = 5.0) -> None:
        """Send what is queued (up to `grace` seconds), then stop."""
        if self._task is not None and self._queue is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)
            done, _ = await asyncio.wait([self._task], timeout=grace)
            if not done:
                self._task.cancel()
        if self._session is not None:
            await close_session(self._session)
            self._session = None
