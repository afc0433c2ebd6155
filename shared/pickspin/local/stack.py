"""`pickspin up | down | status`: the four functions and the backends as local processes.

Wiring, as Knative would do it in a cluster: the gateway's K_SINK is the telemetry function,
telemetry's K_SINK is the selector, and a ticker stands in for the PingSource. `up` writes
the plan of processes and hands it to a supervisor (`pickspin.local.supervisor`) that
starts them, restarts any that dies and stops them all on `down`; the scaler in turn owns
the backend replicas.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from pickspin.errors import ConfigError
from pickspin.eventauth import TOKEN_ENV
from pickspin.local.processes import (
    Proc,
    free_port,
    pid_alive,
    python,
    reserve_port,
    spawn,
    stop,
    wait_http,
)
from pickspin.local.prometheus import (
    DATA_DIR,
    HEALTH_PATH,
    Target,
    find_binary,
    prometheus_command,
    write_config,
    write_targets,
)
from pickspin.local.scaler import orphans, real_kinds, replica_command
from pickspin.local.supervisor import Spec, read_state, write_plan
from pickspin.policy import scaling_for
from pickspin.settings import BackendKind, Settings

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = ("classifier", "selector", "telemetry", "gateway")
STATE_FILE = "state.json"
PLAN_FILE, SUPERVISOR_FILE, REPLICAS_FILE = "plan.json", "supervisor.json", "replicas.json"
# Requests llama-cpp-python's server generates for at once (it queues the rest).
LOCAL_SERVER_CONCURRENCY = 1


@dataclass(frozen=True)
class Stack:
    """A running local stack: its supervisor and, as the supervisor last recorded them, the
    processes it keeps (a restarted process shows its new pid)."""

    state_dir: Path
    supervisor: Proc
    config: Path

    @property
    def procs(self) -> tuple[Proc, ...]:
        children = read_state(self.state_dir / SUPERVISOR_FILE).values()
        return (self.supervisor, *(Proc(str(c["name"]), str(c["kind"]), _int(c["pid"]) or 0,
                                        _int(c["port"]), _str(c["url"]), _str(c["health"]),
                                        str(c["log"])) for c in children))

    @property
    def endpoint(self) -> str:
        gateway = next(p for p in self.procs if p.name == "gateway")
        return f"{gateway.url}/v1"

    def save(self) -> None:
        data = {"config": str(self.config), "supervisor": self.supervisor.to_json()}
        (self.state_dir / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> Stack | None:
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
            return cls(state_dir, Proc(**data["supervisor"]), Path(data["config"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _str(value: object) -> str | None:
    return None if value is None else str(value)


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
    drain_seconds: float = 30.0,
) -> Stack:
    """Start everything under a supervisor, wait until it is ready, and record it.

    With `scale` (the default) the local scaler owns the backends: it applies the keda
    chart's ScaledObjects, so only the warm pools run at first and the rest start on
    demand. Without it every service runs one replica for the whole session. Every port is
    reserved before anything starts and held by the supervisor for the whole run. On
    `down` the gateway drains first: requests in flight get up to `drain_seconds`.
    """
    existing = Stack.load(state_dir)
    if existing and existing.supervisor.alive():
        raise RuntimeError(f"a stack is already running from {state_dir}; "
                           "run `pickspin down` first")
    chosen = _choose(Settings.load(settings_path), services)
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    held: list[socket.socket] = []

    def port() -> int:
        held.append(reserve_port())
        return int(held[-1].getsockname()[1])

    try:
        ports = {s.name: port() for s in chosen.services}
        real = real_kinds()
        runtime = local_settings(chosen, {n: f"http://127.0.0.1:{p}" for n, p in ports.items()},
                                 real)
        config = state_dir / "pickspin.yaml"
        config.write_text(yaml.safe_dump({"global": {"pickspin": runtime.dump()}},
                                         sort_keys=False))
        prom_dir = state_dir / "prometheus"
        write_config(prom_dir)
        (prom_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
        prom_port = port()
        prometheus = Spec("prometheus", "prometheus",
                          prometheus_command(prom_dir, prom_port, find_binary()),
                          cwd=str(prom_dir), health=HEALTH_PATH, port=prom_port)
        specs = [prometheus]
        telemetry_env = {"PICKSPIN_PROMETHEUS_URL": str(prometheus.url)}
        gateway_env: dict[str, str] = {}
        if scale:
            scaler = _scaler_spec(config, str(prometheus.url), prom_dir, logs, port(),
                                  state_dir / REPLICAS_FILE)
            specs.append(scaler)
            telemetry_env["PICKSPIN_REPLICAS_URL"] = str(scaler.url)
            gateway_env["PICKSPIN_REPLICAS_URL"] = str(scaler.url)  # to tell a crash from a drop
        else:
            specs += _backend_specs(runtime, ports, config, prom_dir, real)
        fn_ports = {f: port() for f in FUNCTIONS}
        specs += function_specs(config, fn_ports, tick_seconds, functions_dir, telemetry_env,
                                gateway_env, drain_seconds, token=secrets.token_hex(32))
        write_targets(prom_dir, "functions",
                      [Target(f"127.0.0.1:{fn_ports['gateway']}", "/metrics", {"job": "gateway"})])
        write_plan(state_dir / PLAN_FILE, specs)  # holds the run's token: owner-only
        (state_dir / SUPERVISOR_FILE).unlink(missing_ok=True)
        supervisor = spawn("supervisor", "supervisor",
                           [python(), "-m", "pickspin.local.supervisor",
                            "--plan", str(state_dir / PLAN_FILE),
                            "--state", str(state_dir / SUPERVISOR_FILE), "--logs", str(logs)],
                           env={}, cwd=None, log_dir=logs, pass_fds=[h.fileno() for h in held])
    finally:
        for h in held:  # the supervisor holds its own copies
            h.close()
    stack = Stack(state_dir, supervisor, config)
    stack.save()
    try:
        _wait_started(stack, len(specs), timeout)
        wait_ready(stack.procs, timeout, log)
        if scale:
            _wait_warm_pools(runtime, scaler, timeout, log)
    except BaseException:
        down(state_dir)
        raise
    return stack


def _wait_started(stack: Stack, count: int, timeout: float) -> None:
    """Until the supervisor has recorded all `count` processes as started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = read_state(stack.state_dir / SUPERVISOR_FILE)
        if len(children) == count and all(c["pid"] for c in children.values()):
            return
        if not stack.supervisor.alive():
            tail = Path(stack.supervisor.log).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the supervisor died at start; its log ({stack.supervisor.log})"
                               f" ends with:\n{tail}")
        time.sleep(0.05)
    raise RuntimeError(f"the supervisor did not start its processes within {timeout:.0f} s")


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
        update["emulated"] = settings.backend(s.backend).kind not in real
        if settings.backend(s.backend).kind in real:
            update["concurrency"] = LOCAL_SERVER_CONCURRENCY
        services.append(s.model_copy(update=update))
    return settings.model_copy(update={"services": tuple(services)})


def _scaler_spec(config: Path, prometheus: str, prom_dir: Path, logs: Path, port: int,
                 replicas: Path) -> Spec:
    argv = [python(), "-m", "pickspin.local.scaler", "--config", str(config),
            "--prometheus", prometheus, "--port", str(port), "--logs", str(logs),
            "--prometheus-dir", str(prom_dir), "--state", str(replicas)]
    # its replicas drain for up to 60 s when it stops
    return Spec("scaler", "scaler", argv, port=port, health="/health", grace=65.0)


def _backend_specs(runtime: Settings, ports: dict[str, int], config: Path, prom_dir: Path,
                   real: frozenset[BackendKind]) -> list[Spec]:
    """One replica per service, always on (no scaler): the same command the scaler runs."""
    specs, targets = [], []
    for svc in runtime.services:
        backend = runtime.backend(svc.backend)
        specs.append(Spec(svc.name, "backend",
                          replica_command(runtime, config, real, svc.name, ports[svc.name]),
                          port=ports[svc.name], health=backend.health_path))
        if backend.kind not in real:
            targets.append(Target(f"127.0.0.1:{ports[svc.name]}", backend.metrics_path,
                                  {"job": "backend", "service": svc.name}))
    write_targets(prom_dir, "backends", targets)
    return specs


def _wait_warm_pools(runtime: Settings, scaler: Spec, timeout: float, log: bool) -> None:
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
                       f"ready {ready}; see the scaler's log")


def function_specs(config: Path, ports: dict[str, int], tick_seconds: float = 5.0,
                   functions_dir: Path = REPO / "functions",
                   telemetry_env: dict[str, str] | None = None,
                   gateway_env: dict[str, str] | None = None,
                   drain_seconds: float = 30.0, token: str | None = None) -> list[Spec]:
    """The four functions and the ticker. Each function is served as `kn func build` runs it:
    its `function` package under the func-python middleware its func.yaml's `invoke` names.
    With a `token`, every internal event is signed and checked (`pickspin.eventauth`)."""
    urls = {f: f"http://127.0.0.1:{p}" for f, p in ports.items()}
    auth = {TOKEN_ENV: token} if token else {}
    sinks = {"gateway": urls["telemetry"], "telemetry": urls["selector"]}
    specs = []
    for fn in FUNCTIONS:
        env = {
            "LISTEN_ADDRESS": f"127.0.0.1:{ports[fn]}",
            "PICKSPIN_CONFIG": str(config),
            "PICKSPIN_CLASSIFIER_URL": urls["classifier"],
            "PICKSPIN_SELECTOR_URL": urls["selector"],
            "K_SINK": sinks.get(fn, ""),
            "PICKSPIN_TELEMETRY_URL": urls["telemetry"],
            "PYTHONUNBUFFERED": "1",
            **auth,
            **((telemetry_env or {}) if fn == "telemetry" else {}),
            **((gateway_env or {}) if fn == "gateway" else {}),
        }
        gateway = fn == "gateway"  # drains on down: SIGUSR1, then exits by itself
        specs.append(Spec(fn, "function", [python(), "-c", serve_command(functions_dir / fn)],
                          env={**env, "PICKSPIN_DRAIN_SECONDS": str(drain_seconds)},
                          cwd=str(functions_dir / fn), port=ports[fn],
                          health="/health/readiness",
                          grace=drain_seconds + 5.0 if gateway else 5.0,
                          drain_signal="SIGUSR1" if gateway else None))
    ticker = [python(), "-m", "pickspin.local.ping", "--sink", urls["telemetry"],
              "--every", str(tick_seconds)]
    specs.append(Spec("ping", "ticker", ticker, env=auth))
    return specs


def start_functions(config: Path, logs: Path, tick_seconds: float = 5.0,
                    functions_dir: Path = REPO / "functions",
                    telemetry_env: dict[str, str] | None = None,
                    gateway_env: dict[str, str] | None = None) -> list[Proc]:
    """`function_specs` started as plain processes, without a supervisor (for tests that
    wire functions to backends of their own)."""
    ports = {f: free_port() for f in FUNCTIONS}
    return [spawn(s.name, s.kind, s.argv, env=s.env, cwd=Path(s.cwd) if s.cwd else None,
                  log_dir=logs, port=s.port, health=s.health)
            for s in function_specs(config, ports, tick_seconds, functions_dir, telemetry_env,
                                    gateway_env)]


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
    """Stop everything `up` started: the supervisor stops its processes in reverse order
    (the scaler drains its replicas); whatever is left after that — a supervisor or scaler
    that had been killed leaves orphans — is stopped from the recorded pids. Returns the
    names stopped."""
    stack = Stack.load(state_dir)
    if stack is None:
        return []
    children = [p for p in stack.procs[1:] if p.pid and p.alive()]
    stopped = [p.name for p in children]
    if stack.supervisor.alive():
        grace = sum(s.grace for s in _plan(state_dir)) + 5.0
        stop(stack.supervisor, grace)
        stopped.append("supervisor")
    for proc in [*children, *orphans(state_dir / REPLICAS_FILE)]:
        if proc.alive():
            stop(proc)
            if proc.kind == "replica":
                stopped.append(proc.name)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _plan(state_dir: Path) -> list[Spec]:
    from pickspin.local.supervisor import read_plan

    with contextlib.suppress(OSError, ValueError, TypeError):
        return read_plan(state_dir / PLAN_FILE)
    return []


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
