"""The processes behind a local service: what runs one replica (the real llama.cpp server
for a kind this machine runs for real, else the emulator), and the record of the replica
processes that lets `pickspin down` and a restarted scaler find them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pickspin.core.settings import BackendKind, Settings
from pickspin.emulator.server import emulator_command
from pickspin.local import llamacpp
from pickspin.local.pool import ServicePool
from pickspin.local.processes import Proc, atomic_write, spawn


def real_kinds() -> frozenset[BackendKind]:
    """Backend kinds this machine runs for real rather than emulated."""
    return frozenset({BackendKind.LLAMACPP}) if llamacpp.available() is None else frozenset()


def replica_command(settings: Settings, config: Path, real: frozenset[BackendKind],
                    service: str, port: int) -> list[str]:
    """argv of one replica of `service` on `port`: the real server for a kind in `real`,
    else the emulator with the service's emulation profile."""
    svc = settings.service(service)
    if settings.backend(svc.backend).kind in real:
        return llamacpp.llamacpp_command(port, alias=svc.model)
    return emulator_command(service, port, config)


def launcher_for(settings: Settings, config: Path, logs: Path,
                 real: frozenset[BackendKind]) -> Callable[[str, int], Proc]:
    """Start one replica of a service (`replica_command`) as a process of its own."""

    def launch(service: str, port: int) -> Proc:
        backend = settings.backend(settings.service(service).backend)
        return spawn(f"{service}-{port}", "replica",
                     replica_command(settings, config, real, service, port), env={},
                     cwd=None, log_dir=logs, port=port, health=backend.health_path)

    return launch


def replica_entries(pools: dict[str, ServicePool]) -> list[dict[str, object]]:
    """Every replica process, draining ones too (pure)."""
    return [{"service": name, "pid": r.proc.pid, "port": r.port}
            for name, pool in pools.items() for r in pool.replicas]


def record_replicas(path: Path, entries: list[dict[str, object]]) -> None:
    """Write the replica processes to `path`, so that `pickspin down` and a restarted
    scaler can find them even after this scaler died."""
    atomic_write(path, json.dumps(entries))


def orphans(path: Path) -> list[tuple[str, Proc]]:
    """Replicas a previous scaler recorded that still run, with their service: the same pid
    with its port in its command line (so a reused pid is never taken for one)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    found = []
    for e in entries:
        pid, port = int(e["pid"]), int(e["port"])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(port).encode() in cmdline:
            found.append((str(e["service"]), Proc(f"{e['service']}-{port}", "replica", pid,
                                                  port, None, None, "")))
    return found
