"""What the local run starts: the settings it runs with and the command, environment and
port of each process (`supervisor.Spec`) — the four functions as `kn func build` runs them
(`pickspin.local.serve`), the gateway as the replicas its Knative Service keeps warm, the
scaler, or the backends when there is no scaler."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from pickspin.core.errors import ConfigError
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.settings import CONFIG_ENV, DEFAULT_VALUES, BackendKind, Settings
from pickspin.local.launch import replica_command
from pickspin.local.processes import Proc, free_port, python, spawn
from pickspin.local.prometheus import Target, write_targets
from pickspin.local.serve import DEFAULT_BACKLOG, Listening, invoke_of
from pickspin.local.supervisor import Spec

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = ("classifier", "selector", "telemetry", "gateway")
# the knative chart's defaults for the functions (what a values file's `knative:` overrides)
KNATIVE_VALUES = REPO / "knative" / "values.yaml"
MAX_INFLIGHT_ENV = "PICKSPIN_MAX_INFLIGHT"
# idle keep-alive connections the functions keep: longer than any client's idle expiry
# (httpx's and so the openai client's is 5 s), so no client reuses one the server is closing
KEEP_ALIVE_SECONDS = 75.0
# Requests llama-cpp-python's server generates for at once (it queues the rest).
LOCAL_SERVER_CONCURRENCY = 1


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


@dataclass(frozen=True)
class GatewayScale:
    """How the local run serves the gateway, from the knative chart's `functions.gateway`
    as a values file overrides it: `minScale` replicas (at least one), each answering up to
    `containerConcurrency` requests at once (its `PICKSPIN_MAX_INFLIGHT`, 429 past it),
    sharing one entry socket whose listen backlog holds that many connections per replica."""

    replicas: int = 1
    max_inflight: int = 256

    @property
    def backlog(self) -> int:
        # every request the replicas may answer at once can arrive as a new connection in
        # one burst (the kernel caps it at net.core.somaxconn)
        return max(DEFAULT_BACKLOG, self.replicas * self.max_inflight)

    @property
    def names(self) -> tuple[str, ...]:
        """The replicas' process names: `gateway`, then `gateway-2`, `gateway-3`…"""
        return ("gateway", *(f"gateway-{i}" for i in range(2, self.replicas + 1)))

    @classmethod
    def from_values(cls, values: Mapping[str, object],
                    env: Mapping[str, str] = os.environ) -> GatewayScale:
        """From a values mapping over the knative chart's defaults. An explicit
        `$PICKSPIN_MAX_INFLIGHT` wins over `containerConcurrency`."""
        gateway = _dig(yaml.safe_load(KNATIVE_VALUES.read_text()), "functions", "gateway")
        gateway = {**gateway, **_dig(values, "knative", "functions", "gateway")}
        concurrency = int(str(env.get(MAX_INFLIGHT_ENV) or gateway.get("containerConcurrency")
                              or 0))
        return cls(replicas=max(1, int(str(gateway.get("minScale") or 0))),
                   max_inflight=concurrency or cls.max_inflight)

    @classmethod
    def load(cls, path: str | None) -> GatewayScale:
        where = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_VALUES)
        return cls.from_values(yaml.safe_load(where.read_text()) or {})


def function_processes(scale: GatewayScale) -> list[tuple[str, str]]:
    """(function, process name) of every function process: the gateway once per replica."""
    return [(fn, name) for fn in FUNCTIONS
            for name in (scale.names if fn == "gateway" else (fn,))]


def _dig(data: object, *keys: str) -> dict[str, object]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def scaler_spec(config: Path, prometheus: str, prom_dir: Path, logs: Path, port: int,
                 replicas: Path) -> Spec:
    argv = [python(), "-m", "pickspin.local.scaler", "--config", str(config),
            "--prometheus", prometheus, "--port", str(port), "--logs", str(logs),
            "--prometheus-dir", str(prom_dir), "--state", str(replicas)]
    # its replicas drain for up to 60 s when it stops
    return Spec("scaler", "scaler", argv, port=port, health="/health", grace=65.0)


def backend_specs(runtime: Settings, ports: dict[str, int], config: Path, prom_dir: Path,
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


def function_specs(config: Path, ports: dict[str, int], tick_seconds: float = 5.0,
                   functions_dir: Path = REPO / "functions",
                   telemetry_env: dict[str, str] | None = None,
                   gateway_env: dict[str, str] | None = None,
                   drain_seconds: float = 30.0, token: str | None = None,
                   scale: GatewayScale = GatewayScale(), entry_fd: int | None = None
                   ) -> list[Spec]:
    """The functions and the ticker. Each function is served as `kn func build` runs it:
    its `function` package under the func-python middleware its func.yaml's `invoke` names
    (`pickspin.local.serve`), on its own port (`ports`, by process name). The gateway runs
    as `scale.replicas` processes (`scale.names`); with an `entry_fd` (a listening socket the
    supervisor holds) they all accept from it too. With a `token`, every internal event is
    signed and checked (`pickspin.core.eventauth`)."""
    urls = {f: f"http://127.0.0.1:{p}" for f, p in ports.items()}
    auth = {TOKEN_ENV: token} if token else {}
    sinks = {"gateway": urls["telemetry"], "telemetry": urls["selector"]}
    specs = []
    for fn, name in function_processes(scale):
        gateway = fn == "gateway"  # drains on down: SIGUSR1, then exits by itself
        shared = (entry_fd,) if gateway and entry_fd is not None else ()
        env = {
            "LISTEN_ADDRESS": f"127.0.0.1:{ports[name]}",
            **Listening(shared, scale.backlog, KEEP_ALIVE_SECONDS).to_env(),
            **({MAX_INFLIGHT_ENV: str(scale.max_inflight)} if gateway else {}),
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
        specs.append(Spec(name, "function", serve_command(functions_dir / fn),
                          env={**env, "PICKSPIN_DRAIN_SECONDS": str(drain_seconds)},
                          cwd=str(functions_dir / fn), port=ports[name],
                          health="/health/readiness",
                          grace=drain_seconds + 5.0 if gateway else 5.0,
                          drain_signal="SIGUSR1" if gateway else None, pass_fds=shared))
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


def serve_command(folder: Path) -> list[str]:
    """What serves a function folder: `function.new` under the middleware of its func.yaml's
    `invoke` (`http` or `cloudevent`), as func's scaffold runs it (`pickspin.local.serve`,
    which checks the `invoke` before anything starts)."""
    invoke_of(folder)
    return [python(), "-m", "pickspin.local.serve", str(folder)]


def choose(settings: Settings, names: Sequence[str] | None) -> Settings:
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
