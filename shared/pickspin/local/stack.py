"""`pickspin up | down | status`: the four functions and the backends as local processes.

Wiring, as Knative would do it in a cluster: the gateway's K_SINK is the telemetry function,
telemetry's K_SINK is the selector, and a ticker stands in for the PingSource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pickspin.emulator.launch import emulator_command
from pickspin.errors import ConfigError
from pickspin.local.processes import Proc, free_port, pid_alive, python, spawn, stop, wait_http
from pickspin.settings import Settings

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = ("classifier", "selector", "telemetry", "gateway")
STATE_FILE = "state.json"


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    procs: tuple[Proc, ...]
    config: Path

    @property
    def endpoint(self) -> str:
        gateway = next(p for p in self.procs if p.name == "gateway")
        return f"{gateway.url}/v1"

    def save(self) -> None:
        data = {"config": str(self.config), "procs": [p.to_json() for p in self.procs]}
        (self.state_dir / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> Stack | None:
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        procs = tuple(Proc(**p) for p in data["procs"])
        return cls(state_dir, procs, Path(data["config"]))


def up(
    settings_path: str | None,
    state_dir: Path,
    *,
    services: Sequence[str] | None = None,
    tick_seconds: float = 5.0,
    functions_dir: Path = REPO / "functions",
    timeout: float = 60.0,
    log: bool = True,
) -> Stack:
    """Start everything, wait until it is ready, and record what was started."""
    existing = Stack.load(state_dir)
    if existing and any(p.alive() for p in existing.procs):
        raise RuntimeError(f"a stack is already running from {state_dir}; "
                           "run `pickspin down` first")
    settings = Settings.load(settings_path)
    chosen = _choose(settings, services)
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    ports = {s.name: free_port() for s in chosen.services}
    endpoints = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    runtime = chosen.with_endpoints(endpoints)
    config = state_dir / "pickspin.yaml"
    config.write_text(yaml.safe_dump({"global": {"pickspin": runtime.dump()}}, sort_keys=False))

    procs: list[Proc] = []
    try:
        for svc in runtime.services:
            port = ports[svc.name]
            argv = emulator_command(svc.name, port, config)
            health = runtime.backend(svc.backend).health_path
            procs.append(spawn(svc.name, "backend", argv, env={}, cwd=None, log_dir=logs,
                               port=port, health=health))
        procs.extend(start_functions(config, logs, tick_seconds, functions_dir))
        stack = Stack(state_dir, tuple(procs), config)
        stack.save()
        wait_ready(stack.procs, timeout, log)
    except BaseException:
        for p in procs:
            stop(p)
        raise
    return stack


def start_functions(config: Path, logs: Path, tick_seconds: float = 5.0,
                    functions_dir: Path = REPO / "functions") -> list[Proc]:
    """The four functions (func-python, as `kn func build` runs them) and the ticker."""
    ports = {f: free_port() for f in FUNCTIONS}
    urls = {f: f"http://127.0.0.1:{p}" for f, p in ports.items()}
    sinks = {"gateway": urls["telemetry"], "telemetry": urls["selector"]}
    procs = []
    for fn in FUNCTIONS:
        env = {
            "LISTEN_ADDRESS": f"127.0.0.1:{ports[fn]}",
            "PICKSPIN_CONFIG": str(config),
            "PICKSPIN_CLASSIFIER_URL": urls["classifier"],
            "PICKSPIN_SELECTOR_URL": urls["selector"],
            "K_SINK": sinks.get(fn, ""),
            "PYTHONUNBUFFERED": "1",
        }
        argv = [python(), "-c",
                "from func_python.http import serve; import function; serve(function.new)"]
        procs.append(spawn(fn, "function", argv, env=env, cwd=functions_dir / fn,
                           log_dir=logs, port=ports[fn], health="/health/readiness"))
    ticker = [python(), "-m", "pickspin.local.ping", "--sink", urls["telemetry"],
              "--every", str(tick_seconds)]
    procs.append(spawn("ping", "ticker", ticker, env={}, cwd=None, log_dir=logs))
    return procs


def _choose(settings: Settings, names: Sequence[str] | None) -> Settings:
    if not names:
        return settings
    known = {s.name for s in settings.services}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError("--services", [f"unknown service {n!r} (have {sorted(known)})"
                                         for n in unknown])
    kept = tuple(s for s in settings.services if s.name in names)
    models = tuple(m for m in settings.models if any(s.model == m.name for s in kept))
    return settings.model_copy(update={"services": kept, "models": models})


def wait_ready(procs: Sequence[Proc], timeout: float, log: bool = False) -> None:
    """Wait until every process with a health endpoint answers 200, or raise with its log."""
    start = time.monotonic()
    for proc in procs:
        if proc.url is None or proc.health is None:
            continue
        left = max(0.5, timeout - (time.monotonic() - start))
        if not wait_http(proc.url + proc.health, left, alive=proc):
            tail = Path(proc.log).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{proc.name} did not become ready within {timeout:.0f} s; "
                               f"its log ({proc.log}) ends with:\n{tail}")
        if log:
            print(f"  ready  {proc.name:<24} {proc.url}", flush=True)


def down(state_dir: Path) -> list[str]:
    """Stop exactly what `up` recorded; returns the names stopped."""
    stack = Stack.load(state_dir)
    if stack is None:
        return []
    stopped = []
    for proc in reversed(stack.procs):
        if proc.alive():
            stop(proc)
            stopped.append(proc.name)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def status(state_dir: Path) -> list[dict[str, object]]:
    """One row per process: alive, and what its health endpoint says."""
    stack = Stack.load(state_dir)
    if stack is None:
        return []
    rows = []
    for proc in stack.procs:
        state = "stopped"
        if pid_alive(proc.pid):
            state = "running"
            if proc.url and proc.health:
                state = "ready" if wait_http(proc.url + proc.health, 1.0) else "not ready"
        rows.append({"name": proc.name, "kind": proc.kind, "pid": proc.pid,
                     "url": proc.url or "-", "state": state})
    return rows
