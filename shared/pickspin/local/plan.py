"""What the local run starts: the settings it runs with and the command, environment and
port of each process (`supervisor.Spec`) — the four functions as `kn func build` runs them,
the scaler, or the backends when there is no scaler."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from pickspin.errors import ConfigError
from pickspin.eventauth import TOKEN_ENV
from pickspin.local.processes import Proc, free_port, python, spawn
from pickspin.local.prometheus import Target, write_targets
from pickspin.local.scaler import replica_command
from pickspin.local.supervisor import Spec
from pickspin.settings import BackendKind, Settings

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = ("classifier", "selector", "telemetry", "gateway")
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
