"""The local scaler: KEDA's semantics applied to local backend processes.

Every polling interval, for each ScaledObject the keda chart renders for the local values,
it runs the triggers' PromQL against the local Prometheus and asks `pickspin.core.policy.decide`
(the same function the promtool tests check against KEDA's arithmetic) how many replicas
the service needs, then starts or drains replica processes behind the service's port.

    python -m pickspin.local.scaler --config run/pickspin.yaml --prometheus http://…:9090
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from pickspin.adapters.promstats import QueryClient, connect, instant_value
from pickspin.core.policy import Decision, Observation, PollMemory, poll
from pickspin.core.profiles import local_time_of_day
from pickspin.core.settings import BackendKind, Settings
from pickspin.core.telemetry import StatsUnavailable
from pickspin.local.launch import (
    launcher_for,
    orphans,
    real_kinds,
    record_replicas,
    replica_entries,
)
from pickspin.local.pool import ServicePool
from pickspin.local.processes import stop
from pickspin.local.prometheus import Target, write_targets
from pickspin.local.scaledobjects import LocalScaledObject, Trigger, load

log = logging.getLogger("pickspin.scaler")
Query = Callable[[str], Awaitable[float | None]]


@dataclass
class History:
    memory: PollMemory
    last: tuple[Observation, Decision] | None = None
    failures: int = 0  # failed polls in a row (KEDA's fallback counts them)


class LocalScaler:
    def __init__(self, objects: dict[str, LocalScaledObject], pools: dict[str, ServicePool],
                 query: Query, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.objects = objects
        self.pools = pools
        self.query = query
        self.clock = clock
        #: epoch seconds, for the cron triggers' time of day
        self.wall = wall
        self.history = {name: History(PollMemory(clock())) for name in objects}

    async def poll(self) -> None:
        for name, so in self.objects.items():
            pool = self.pools[name]
            await pool.check()
            h = self.history[name]
            try:
                demand = await value_of(self.query, so.demand)
                # requests the gateway holds for this service, plus those the pool holds
                # (the local activator): both are demand a backend at zero cannot show
                pending = await value_of(self.query, so.pending) + pool.waiting
            except (StatsUnavailable, EmptyResult) as exc:
                h.failures += 1
                await self._fall_back(name, so, pool, h.failures, exc)
                continue
            h.failures = 0
            obs, decision = poll(h.memory, so.params, demand, pending, pool.count, self.clock(),
                                 local_time_of_day(self.wall(), so.params.timezone))
            if decision.replicas != pool.count:
                log.info("%s: %d -> %d replicas (%s; demand %.2f, pending %.0f)", name,
                         pool.count, decision.replicas, decision.reason, demand, pending)
            h.last = (obs, decision)
            await pool.scale_to(decision.replicas)

    async def _fall_back(self, name: str, so: LocalScaledObject, pool: ServicePool,
                         failures: int, exc: Exception) -> None:
        """KEDA's `fallback`: after `failureThreshold` failed polls in a row, its replicas
        (with `currentReplicasIfHigher`, the running count when that is more); before that,
        or without a fallback, the replicas stay as they are."""
        fb = so.fallback
        if fb is None or failures < fb.failure_threshold:
            log.warning("%s: metrics unavailable (%d in a row), replicas unchanged: %s", name,
                        failures, exc)
            return
        want = fb.replicas
        if fb.behavior == "currentReplicasIfHigher":
            want = max(want, pool.count)
        if want != pool.count:
            log.warning("%s: fallback after %d failed polls: %d -> %d replicas (%s)", name,
                        failures, pool.count, want, exc)
        await pool.scale_to(want)

    def targets(self, settings: Settings, real: frozenset[BackendKind]) -> list[Target]:
        """Every live replica's metrics endpoint, for Prometheus' file discovery (the local
        llama.cpp server has none: the gateway's metrics stand for it)."""
        found = []
        for name, pool in self.pools.items():
            backend = settings.backend(settings.service(name).backend)
            if backend.kind in real:
                continue
            found += [Target(f"127.0.0.1:{r.port}", backend.metrics_path,
                             {"job": "backend", "service": name, "backend": backend.kind.value})
                      for r in pool.replicas if not r.draining]
        return found

    def replicas(self) -> dict[str, dict[str, object]]:
        out: dict[str, dict[str, object]] = {}
        for name, pool in self.pools.items():
            last = self.history[name].last
            crash = pool.last_crash
            out[name] = {
                "replicas": pool.count, "ready": pool.ready_count, "restarts": pool.restarts,
                "last_crash": crash.to_json() if crash else None,
                "pids": [r.proc.pid for r in pool.replicas if not r.draining],
                "last_recovery_seconds": pool.last_recovery_seconds,
                "reason": last[1].reason.value if last else None,
                "demand": last[0].demand if last else None,
                "pending": last[0].pending if last else None,
            }
        return out


def prometheus_query(client: QueryClient) -> Query:
    """An instant query returning one number, or None for an empty result, through the
    library's Prometheus client (blocking, so on a thread: the loop keeps serving)."""

    async def run(promql: str) -> float | None:
        return await asyncio.to_thread(instant_value, client, promql)

    return run


class EmptyResult(ValueError):
    """A trigger's query returned nothing and its ScaledObject does not ignore that."""


async def value_of(query: Query, trigger: Trigger) -> float:
    """The trigger's value as KEDA's prometheus scaler reads it: an empty result is 0 with
    `ignoreNullValues`, else a failed poll."""
    found = await query(trigger.query)
    if found is None:
        if trigger.ignore_null_values:
            return 0.0
        raise EmptyResult(f"{trigger.name}: empty result and ignoreNullValues is false")
    return found


def status_app(scaler: LocalScaler) -> Starlette:
    """`GET /replicas` (what telemetry and the gateway read) and `GET /health`. `/replicas`
    first looks for replicas that died since the last poll, so a caller that just lost a
    connection learns at once whether the backend crashed."""

    async def replicas(request: Request) -> JSONResponse:
        for pool in scaler.pools.values():
            pool.reap()
        return JSONResponse(scaler.replicas())

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/replicas", replicas), Route("/health", health)])


async def serve_status(scaler: LocalScaler, port: int, stopping: asyncio.Event) -> None:
    """Serve `status_app` on 127.0.0.1:`port` until `stopping` is set."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = log
    await serve(status_app(scaler), config, shutdown_trigger=stopping.wait)  # type: ignore[arg-type]


async def run(settings: Settings, config: Path, prometheus: str, status_port: int,
              logs: Path, polling: int, prometheus_dir: Path | None = None,
              state: Path | None = None) -> None:
    objects = load(settings, prometheus, polling)
    real = real_kinds()
    launch = launcher_for(settings, config, logs, real)
    pools = {
        name: ServicePool(name, int(urlsplit(settings.service(name).endpoint).port or 0),
                          settings.backend(settings.service(name).backend).health_path, launch)
        for name in objects
    }
    for service, orphan in orphans(state) if state is not None else []:
        # left running by a scaler that died: serve them again rather than cold-start
        if service in pools and orphan.port is not None:
            log.warning("adopting %s (pid %d), left running by a previous scaler",
                        orphan.name, orphan.pid)
            pools[service].adopt(orphan, orphan.port)
        else:
            await asyncio.to_thread(stop, orphan, 5.0)
    for pool in pools.values():
        await pool.serve()
    client = connect(prometheus, timeout=5.0)
    scaler = LocalScaler(objects, pools, prometheus_query(client))
    stopping = asyncio.Event()
    status = asyncio.create_task(serve_status(scaler, status_port, stopping))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        written: list[Target] | None = None
        recorded: list[dict[str, object]] | None = None
        while not stopping.is_set():
            if status.done():  # the status server could not bind, or stopped: say why
                status.result()
                raise RuntimeError("the scaler's status server stopped")
            await scaler.poll()
            if state is not None and (entries := replica_entries(pools)) != recorded:
                record_replicas(state, entries)
                recorded = entries
            targets = scaler.targets(settings, real)
            if prometheus_dir is not None and targets != written:  # only on a change
                write_targets(prometheus_dir, "backends", targets)
                written = targets
            # pool.check between polls so readiness shows up quickly
            for _ in range(max(1, int(polling / 0.25))):
                if stopping.is_set():
                    break
                await asyncio.sleep(0.25)
                for pool in pools.values():
                    await pool.check()
    finally:
        stopping.set()
        await asyncio.gather(status, return_exceptions=True)
        await asyncio.gather(*(p.close() for p in pools.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickspin.local.scaler")
    parser.add_argument("--config", required=True, help="the run's values file (endpoints set)")
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--port", type=int, required=True, help="status port (/replicas)")
    parser.add_argument("--logs", required=True, help="folder for replica logs")
    parser.add_argument("--polling", type=int, default=1, help="seconds between polls")
    parser.add_argument("--prometheus-dir", help="Prometheus folder whose targets/ to update")
    parser.add_argument("--state", help="file recording the replica processes (for down and "
                        "for a restarted scaler)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.load(args.config)
    asyncio.run(run(settings, Path(args.config), args.prometheus, args.port, Path(args.logs),
                    args.polling, Path(args.prometheus_dir) if args.prometheus_dir else None,
                    Path(args.state) if args.state else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
