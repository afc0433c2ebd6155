"""`pickspin status`: what the local run's supervisor and scaler say of their processes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

from pickspin.core.errors import ConfigError
from pickspin.core.settings import Settings
from pickspin.local.processes import pid_alive, wait_http
from pickspin.local.stack import SUPERVISOR_FILE, Stack
from pickspin.local.supervisor import read_state


def status(state_dir: Path) -> list[dict[str, object]]:
    """One row per process: alive, what its health endpoint says, its restarts and how it
    last ended."""
    stack = Stack.load(state_dir)
    if stack is None:
        return []
    recorded = read_state(state_dir / SUPERVISOR_FILE)
    rows = []
    for proc in stack.procs:
        state = "stopped"
        if proc.pid and pid_alive(proc.pid):
            state = "running"
            if proc.url and proc.health:
                state = "ready" if wait_http(proc.url + proc.health, 1.0) else "not ready"
        elif recorded.get(proc.name, {}).get("state") == "restarting":
            state = "restarting"
        child = recorded.get(proc.name, {})
        last = child.get("last_exit")
        rows.append({"name": proc.name, "kind": proc.kind, "pid": proc.pid,
                     "url": proc.url or "-", "state": state,
                     "restarts": child.get("restarts", 0),
                     "last_exit": last.get("description") if isinstance(last, dict) else None})
    return rows


def services(state_dir: Path) -> dict[str, dict[str, object]]:
    """Per backend service, what the local scaler reports: replicas, ready, restarts and
    how the last replica that died unasked ended (empty without a running scaler)."""
    stack = Stack.load(state_dir)
    scaler = next((p for p in stack.procs if p.kind == "scaler"), None) if stack else None
    if scaler is None or scaler.url is None or not scaler.alive():
        return {}
    try:
        data: dict[str, dict[str, object]] = httpx.get(f"{scaler.url}/replicas",
                                                       timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return {}
    with contextlib.suppress(ConfigError, OSError):
        emulated = {s.name: s.emulated for s in Settings.load(stack.config).services}  # type: ignore[union-attr]
        for name, entry in data.items():
            entry["emulated"] = emulated.get(name, True)
    return data
