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

import httpx
import yaml

from pickspin.errors import ConfigError
from pickspin.local.processes import Proc, free_port, pid_alive, python, spawn, stop, wait_http
from pickspin.local.prometheus import Target, start_prometheus, write_config, write_targets
from pickspin.local.scaler import launcher_for, real_kinds
from pickspin.policy import scaling_for
from pickspin.settings import BackendKind, Settings

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = ("classifier", "selector", "telemetry", "gateway")
STATE_FILE = "state.json"
# Requests llama-cpp-python's server generates for at once (it queues the rest).
LOCAL_SERVER_CONCURRENCY = 1


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
    scale: bool = True,
    functions_dir: Path = REPO / "functions",
    timeout: float = 90.0,
    log: bool = True,
) -> Stack:
    """Start everything, wait until it is ready, and record what was started.

    With `scale` (the default) the local scaler owns the backends: it applies the keda
    chart's ScaledObjects, so only the warm pools run at first and the rest start on
    demand. Without it every service runs one replica for the whole session.
    """
    existing = Stack.load(state_dir)
    if existing and any(p.alive() for p in existing.procs):
        raise RuntimeError(f"a stack is already running from {state_dir}; "
                           "run `pickspin down` first")
    chosen = _choose(Settings.load(settings_path), services)
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    ports = {s.name: free_port() for s in chosen.services}
    runtime = local_settings(chosen, {n: f"http://127.0.0.1:{p}" for n, p in ports.items()},
                             real_kinds())
    config = state_dir / "pickspin.yaml"
    config.write_text(yaml.safe_dump({"global": {"pickspin": runtime.dump()}}, sort_keys=False))
    prom_dir = state_dir / "prometheus"
    write_config(prom_dir)

    procs: list[Proc] = []
    try:
        prometheus = start_prometheus(prom_dir, free_port(), logs)
        procs.append(prometheus)
        assert prometheus.url
        telemetry_env = {"PICKSPIN_PROMETHEUS_URL": prometheus.url}
        gateway_env: dict[str, str] = {}
        if scale:
            scaler = _start_scaler(config, prometheus.url, prom_dir, logs)
            procs.append(scaler)
            assert scaler.url
            telemetry_env["PICKSPIN_REPLICAS_URL"] = scaler.url
            gateway_env["PICKSPIN_REPLICAS_URL"] = scaler.url  # to tell a crash from a drop
        else:
            procs += _start_backends(runtime, ports, config, prom_dir, logs)
        functions = start_functions(config, logs, tick_seconds, functions_dir, telemetry_env,
                                    gateway_env)
        procs += functions
        gateway = next(p for p in functions if p.name == "gateway")
        write_targets(prom_dir, "functions",
                      [Target(f"127.0.0.1:{gateway.port}", "/metrics", {"job": "gateway"})])
        stack = Stack(state_dir, tuple(procs), config)
        stack.save()
        wait_ready(stack.procs, timeout, log)
        if scale:
            _wait_warm_pools(runtime, scaler, timeout, log)
    except BaseException:
        for p in procs:
            stop(p)
        raise
    return stack


def local_settings(settings: Settings, endpoints: dict[str, str],
                   real: frozenset[BackendKind] = frozenset()) -> Settings:
    """The run's settings describe this machine: local endpoints, the cold start a local
    backend really has (the emulated one), and for a real local server its real capacity
    (llama-cpp-python's server answers one request at a time)."""
    services = []
    for s in settings.with_endpoints(endpoints).services:
        update: dict[str, object] = {}
        if s.emulation is not None:
            update["cold_start_seconds"] = s.emulation.cold_start_seconds
        if settings.backend(s.backend).kind in real:
            update["concurrency"] = LOCAL_SERVER_CONCURRENCY
        services.append(s.model_copy(update=update))
    return settings.model_copy(update={"services": tuple(services)})


def _start_scaler(config: Path, prometheus: str, prom_dir: Path, logs: Path) -> Proc:
    port = free_port()
    argv = [python(), "-m", "pickspin.local.scaler", "--config", str(config),
            "--prometheus", prometheus, "--port", str(port), "--logs", str(logs),
            "--prometheus-dir", str(prom_dir)]
    return spawn("scaler", "scaler", argv, env={}, cwd=None, log_dir=logs, port=port,
                 health="/health")


def _start_backends(runtime: Settings, ports: dict[str, int], config: Path, prom_dir: Path,
                    logs: Path) -> list[Proc]:
    """One replica per service, always on (no scaler): the same launcher the scaler uses."""
    real = real_kinds()
    launch = launcher_for(runtime, config, logs, real)
    procs, targets = [], []
    for svc in runtime.services:
        backend = runtime.backend(svc.backend)
        procs.append(launch(svc.name, ports[svc.name]))
        if backend.kind not in real:
            targets.append(Target(f"127.0.0.1:{ports[svc.name]}", backend.metrics_path,
                                  {"job": "backend", "service": svc.name}))
    write_targets(prom_dir, "backends", targets)
    return procs


def _wait_warm_pools(runtime: Settings, scaler: Proc, timeout: float, log: bool) -> None:
    """Until every warm pool the profile asks for is ready (read from the scaler)."""
    want = {s.name: scaling_for(runtime, s.name).min_replicas for s in runtime.services}
    want = {name: n for name, n in want.items() if n > 0}
    deadline = time.monotonic() + timeout
    ready: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{scaler.url}/replicas", timeout=2).json()
            ready = {name: int(status[name]["ready"]) for name in want}
        except (httpx.HTTPError, ValueError, KeyError):
            ready = {}
        if ready and all(ready[n] >= want[n] for n in want):
            if log:
                print(f"  warm   {', '.join(f'{n} x{want[n]}' for n in want) or 'nothing'}",
                      flush=True)
            return
        time.sleep(0.2)
    raise RuntimeError(f"warm pools not ready within {timeout:.0f} s: want {want}, "
                       f"ready {ready}; see {scaler.log}")


def start_functions(config: Path, logs: Path, tick_seconds: float = 5.0,
                    functions_dir: Path = REPO / "functions",
                    telemetry_env: dict[str, str] | None = None,
                    gateway_env: dict[str, str] | None = None) -> list[Proc]:
    """The four functions and the ticker. Each function is served as `kn func build` runs it:
    its `function` package under the func-python middleware its func.yaml's `invoke` names."""
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
            "PICKSPIN_TELEMETRY_URL": urls["telemetry"],
            "PYTHONUNBUFFERED": "1",
            **((telemetry_env or {}) if fn == "telemetry" else {}),
            **((gateway_env or {}) if fn == "gateway" else {}),
        }
        argv = [python(), "-c", serve_command(functions_dir / fn)]
        procs.append(spawn(fn, "function", argv, env=env, cwd=functions_dir / fn,
                           log_dir=logs, port=ports[fn], health="/health/readiness"))
    ticker = [python(), "-m", "pickspin.local.ping", "--sink", urls["telemetry"],
              "--every", str(tick_seconds)]
    procs.append(spawn("ping", "ticker", ticker, env={}, cwd=None, log_dir=logs))
    return procs


def serve_command(folder: Path) -> str:
    """The Python that func's scaffold runs for a function folder: the middleware of its
    func.yaml's `invoke` (`http` or `cloudevent`) serving `function.new`."""
    invoke = yaml.safe_load((folder / "func.yaml").read_text()).get("invoke", "http")
    if invoke not in ("http", "cloudevent"):
        raise ConfigError(str(folder / "func.yaml"),
                          [f"invoke {invoke!r}: want http or cloudevent"])
    return f"from func_python.{invoke} import serve; import function; serve(function.new)"


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
    return data
