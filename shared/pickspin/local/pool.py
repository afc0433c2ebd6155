"""A local stand-in for a Deployment and its Service: replica processes behind one stable
port. A new connection goes to the ready replica holding the fewest connections (the
emulated servers close a keep-alive connection after `MAX_REQUESTS_PER_CONNECTION`
requests, so a new replica takes its share of a busy client's traffic within seconds).
With no ready replica — at zero, starting, or draining — a request (`POST`) is held, as
Knative's activator buffers it, for up to `hold_seconds`, and counted in `waiting`, which
the scaler treats as pending demand; probes (`GET`) are closed at once, as a Service
without endpoints refuses them, so a health check never wakes a backend. A replica that
dies unasked is replaced, and how it died (exit code or signal, and the library it
faulted in) is kept, as a pod's `lastState.terminated` keeps it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from pickspin.local.crash import Crash, diagnose, reap
from pickspin.local.processes import Proc, reserve_port, stop

Launcher = Callable[[str, int], Proc]  # (service name, port) → started process
# new connections the stable port queues before accepting them: the gateway keeps up to 512
# to a service (asyncio's default, 100, is overflowed by a burst; the kernel drops the SYN
# and the client's retransmit costs it a second or more)
BACKLOG = 1024


@dataclass
class Replica:
    proc: Proc
    port: int
    started: float
    ready_at: float | None = None
    draining: bool = False
    #: started to replace a replica that crashed (its readiness ends a recovery)
    recovering: bool = False
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    started_wall: float = field(default_factory=time.time)
    #: holds the replica's port while it lives (see `processes.reserve_port`)
    reservation: socket.socket | None = None

    def release(self) -> None:
        if self.reservation is not None:
            self.reservation.close()
            self.reservation = None

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and not self.draining


class ServicePool:
    def __init__(self, service: str, port: int, health_path: str, launcher: Launcher,
                 clock: Callable[[], float] = time.monotonic, hold_seconds: float = 60.0
                 ) -> None:
        self.service = service
        self.hold_seconds = hold_seconds
        #: requests held for want of a ready replica
        self.waiting = 0
        self._became_ready = asyncio.Event()
        self.port = port
        self.health_path = health_path
        self.launcher = launcher
        self.clock = clock
        self.replicas: list[Replica] = []
        self.restarts = 0
        self.last_recovery_seconds: float | None = None
        #: how the replicas that died unasked ended, newest last
        self.crashes: deque[Crash] = deque(maxlen=10)
        self._rr = itertools.count()
        self._server: asyncio.Server | None = None
        self._http = httpx.AsyncClient(timeout=1.0)

    # ---- the stable endpoint ---------------------------------------------------------
    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port,
                                                  backlog=BACKLOG)

    def _pick(self) -> Replica | None:
        """The ready replica with the fewest connections (ties in turn)."""
        ready = [r for r in self.replicas if r.ready]
        if not ready:
            return None
        turn = next(self._rr) % len(ready)
        rotated = ready[turn:] + ready[:turn]
        return min(rotated, key=lambda r: len(r.connections))  # min keeps the first of ties

    async def _hold(self) -> Replica | None:
        """Wait for a ready replica, up to `hold_seconds`, counted in `waiting`."""
        deadline = self.clock() + self.hold_seconds
        self.waiting += 1
        try:
            while (replica := self._pick()) is None:
                left = deadline - self.clock()
                if left <= 0:
                    return None
                self._became_ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._became_ready.wait(), min(left, 0.25))
            return replica
        finally:
            self.waiting -= 1

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readline(), 60.0)  # the request line
        except (TimeoutError, ValueError, ConnectionError):
            writer.close()
            return
        replica = self._pick()
        if replica is None and head.startswith(b"POST "):
            replica = await self._hold()
        if replica is None or not head:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", replica.port)
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        replica.connections.add(writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            replica.connections.discard(writer)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    # ---- replicas ----------------------------------------------------------------------
    @property
    def count(self) -> int:
        return sum(1 for r in self.replicas if not r.draining)

    @property
    def ready_count(self) -> int:
        return sum(1 for r in self.replicas if r.ready)

    def adopt(self, proc: Proc, port: int) -> Replica:
        """A replica a previous owner started that still runs: serve it again (ready once its
        health answers) instead of starting a new one cold."""
        replica = Replica(proc, port, self.clock())
        self.replicas.append(replica)
        return replica

    def start_replica(self) -> Replica:
        held = reserve_port()
        port = int(held.getsockname()[1])
        try:
            proc = self.launcher(self.service, port)
        except BaseException:
            held.close()
            raise
        replica = Replica(proc, port, self.clock(), reservation=held)
        self.replicas.append(replica)
        return replica

    @property
    def last_crash(self) -> Crash | None:
        return self.crashes[-1] if self.crashes else None

    def reap(self) -> None:
        """Find replicas that died: record how each ended and replace it, unless it was
        draining (a scale-down). Only looks at processes, so it is cheap to call often."""
        for replica in list(self.replicas):
            if replica.proc.alive():
                continue
            self.replicas.remove(replica)
            replica.release()
            code = reap(replica.proc.pid)  # also frees the zombie
            if replica.draining:
                continue
            crash = diagnose(replica.proc.pid, code, time.time(),
                             since=replica.started_wall)
            self.crashes.append(crash)
            self.restarts += 1
            self.start_replica().recovering = True

    async def check(self) -> None:
        """Mark replicas ready when their health answers; replace ones that died."""
        self.reap()
        for replica in list(self.replicas):
            if replica.ready_at is None and await self._healthy(replica):
                replica.ready_at = self.clock()
                self._became_ready.set()
                if replica.recovering:
                    self.last_recovery_seconds = replica.ready_at - replica.started

    async def _healthy(self, replica: Replica) -> bool:
        try:
            answer = await self._http.get(f"http://127.0.0.1:{replica.port}{self.health_path}")
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    async def scale_to(self, desired: int) -> None:
        while self.count < desired:
            self.start_replica()
        surplus = self.count - desired
        if surplus > 0:
            # newest first: they are the least likely to hold long-running streams
            for replica in [r for r in reversed(self.replicas) if not r.draining][:surplus]:
                replica.draining = True
                asyncio.get_running_loop().create_task(self._drain(replica))

    async def _drain(self, replica: Replica, grace: float = 60.0) -> None:
        """Like a pod's termination: no new connections, SIGTERM so the server finishes what
        it is answering, SIGKILL after the grace period."""
        await asyncio.to_thread(stop, replica.proc, grace)
        for w in list(replica.connections):
            w.close()
        replica.release()
        if replica in self.replicas:
            self.replicas.remove(replica)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(asyncio.to_thread(stop, r.proc) for r in self.replicas))
        for replica in self.replicas:
            replica.release()
        self.replicas.clear()
        await self._http.aclose()
