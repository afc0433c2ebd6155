"""`pickspin up | down`: the functions and the backends as local processes (`pickspin status`
reads them: `pickspin.local.status`).

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

from pickspin.core.policy import scaling_for
from pickspin.core.profiles import local_time_of_day
from pickspin.core.settings import Settings
from pickspin.local.launch import orphans, real_kinds
from pickspin.local.plan import (
    REPO,
    GatewayScale,
    backend_specs,
    choose,
    function_processes,
    function_specs,
    local_settings,
    scaler_spec,
)
from pickspin.local.processes import (
    Proc,
    listen_socket,
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
from pickspin.local.supervisor import Spec, read_plan, read_state, write_plan

STATE_FILE = "state.json"
PLAN_FILE, SUPERVISOR_FILE, REPLICAS_FILE = "plan.json", "supervisor.json", "replicas.json"


@dataclass(frozen=True)
class Stack:
    """A running local stack: its supervisor and, as the supervisor last recorded them, the
    processes it keeps (a restarted process shows its new pid). `entry` is the gateway's
    port every replica serves (each also has one of its own, for health and metrics)."""

    state_dir: Path
    supervisor: Proc
    config: Path
    entry: str | None = None

    @property
    def procs(self) -> tuple[Proc, ...]:
        children = read_state(self.state_dir / SUPERVISOR_FILE).values()
        return (self.supervisor, *(Proc(str(c["name"]), str(c["kind"]), _int(c["pid"]) or 0,
                                        _int(c["port"]), _str(c["url"]), _str(c["health"]),
                                        str(c["log"])) for c in children))

    @property
    def endpoint(self) -> str:
        if self.entry:
            return f"{self.entry}/v1"
        gateway = next(p for p in self.procs if p.name == "gateway")
        return f"{gateway.url}/v1"

    def save(self) -> None:
        data = {"config": str(self.config), "supervisor": self.supervisor.to_json(),
                "entry": self.entry}
        (self.state_dir / STATE_FILE).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> Stack | None:
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
            return cls(state_dir, Proc(**data["supervisor"]), Path(data["config"]),
                       data.get("entry"))
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
    gateways: int | None = None,
) -> Stack:
    """Start everything under a supervisor, wait until it is ready, and record it.

    With `scale` (the default) the local scaler owns the backends: it applies the keda
    chart's ScaledObjects, so only the warm pools run at first and the rest start on
    demand. Without it every service runs one replica for the whole session. Every port is
    reserved before anything starts and held by the supervisor for the whole run. The
    gateway runs as many replicas as its Knative Service keeps warm (`minScale` in the
    values; `gateways` overrides it), all accepting from one entry socket the supervisor
    holds, so a replica's restart refuses no connection. On `down` the gateways drain
    first: requests in flight get up to `drain_seconds`.
    """
    existing = Stack.load(state_dir)
    if existing and existing.supervisor.alive():
        raise RuntimeError(f"a stack is already running from {state_dir}; "
                           "run `pickspin down` first")
    chosen = choose(Settings.load(settings_path), services)
    serving = GatewayScale.load(settings_path)
    if gateways is not None:
        serving = GatewayScale(max(1, gateways), serving.max_inflight)
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
            scaler = scaler_spec(config, str(prometheus.url), prom_dir, logs, port(),
                                  state_dir / REPLICAS_FILE)
            specs.append(scaler)
            telemetry_env["PICKSPIN_REPLICAS_URL"] = str(scaler.url)
            gateway_env["PICKSPIN_REPLICAS_URL"] = str(scaler.url)  # to tell a crash from a drop
        else:
            specs += backend_specs(runtime, ports, config, prom_dir, real)
        fn_ports = {name: port() for _, name in function_processes(serving)}
        held.append(listen_socket(serving.backlog))
        entry = f"http://127.0.0.1:{held[-1].getsockname()[1]}"
        specs += function_specs(config, fn_ports, tick_seconds, functions_dir, telemetry_env,
                                gateway_env, drain_seconds, token=secrets.token_hex(32),
                                scale=serving, entry_fd=held[-1].fileno())
        write_targets(prom_dir, "functions",  # each replica, as a PodMonitor scrapes each pod
                      [Target(f"127.0.0.1:{fn_ports[name]}", "/metrics", {"job": "gateway"})
                       for name in serving.names])
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
    stack = Stack(state_dir, supervisor, config, entry)
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


def _wait_warm_pools(runtime: Settings, scaler: Spec, timeout: float, log: bool) -> None:
    """Until every warm pool the profile asks for is ready (read from the scaler)."""
    params = [scaling_for(runtime, s.name) for s in runtime.services]
    # the warm pool and what the cron triggers ask for now (the scheduled pools)
    want = {p.service: max(p.min_replicas,
                           p.scheduled(local_time_of_day(time.time(), p.timezone)))
            for p in params}
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
    for proc in [*children, *(p for _, p in orphans(state_dir / REPLICAS_FILE))]:
        if proc.alive():
            stop(proc)
            if proc.kind == "replica":
                stopped.append(proc.name)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _plan(state_dir: Path) -> list[Spec]:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return read_plan(state_dir / PLAN_FILE)
    return []
