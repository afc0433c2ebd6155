"""Build an emulator app from the settings and serve it with hypercorn on asyncio."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from dataclasses import dataclass

from pickspin.core.errors import ConfigError
from pickspin.core.settings import Settings
from pickspin.emulator.app import EmulatorApp
from pickspin.emulator.profile import EmulationProfile


def emulator_command(
    service: str,
    port: int,
    config_path: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    error_rate: float | None = None,
    cold_start_seconds: float | None = None,
    max_concurrency: int | None = None,
    seed: int | None = None,
) -> list[str]:
    """The argv that runs one emulator (what the local scaler spawns for an emulated replica)."""
    cmd = [sys.executable, "-m", "pickspin.emulator", "--service", service,
           "--port", str(port), "--host", host]
    for flag, value in (("--config", config_path), ("--error-rate", error_rate),
                        ("--cold-start-seconds", cold_start_seconds),
                        ("--max-concurrency", max_concurrency), ("--seed", seed)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


ENV_ERROR_RATE = "PICKSPIN_EMULATOR_ERROR_RATE"
ENV_COLD_START = "PICKSPIN_EMULATOR_COLD_START_SECONDS"
ENV_MAX_CONCURRENCY = "PICKSPIN_EMULATOR_MAX_CONCURRENCY"


@dataclass(frozen=True)
class Overrides:
    """Values that replace the service's `emulation` block (None keeps it)."""

    error_rate: float | None = None
    cold_start_seconds: float | None = None
    max_concurrency: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Overrides:
        env = dict(os.environ) if env is None else env

        def number(name: str) -> float | None:
            raw = env.get(name)
            if raw in (None, ""):
                return None
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(name, [f"not a number: {raw!r}"]) from None

        concurrency = number(ENV_MAX_CONCURRENCY)
        return cls(error_rate=number(ENV_ERROR_RATE),
                   cold_start_seconds=number(ENV_COLD_START),
                   max_concurrency=int(concurrency) if concurrency is not None else None)

    def over(self, base: Overrides) -> Overrides:
        """These values where set, else `base`'s."""
        return Overrides(
            error_rate=self.error_rate if self.error_rate is not None else base.error_rate,
            cold_start_seconds=(self.cold_start_seconds if self.cold_start_seconds is not None
                                else base.cold_start_seconds),
            max_concurrency=(self.max_concurrency if self.max_concurrency is not None
                             else base.max_concurrency),
        )


def build_app(settings: Settings, service_name: str, overrides: Overrides | None = None,
              rng: random.Random | None = None) -> EmulatorApp:
    """The emulator of one configured service; ConfigError if it cannot be emulated."""
    try:
        service = settings.service(service_name)
    except KeyError as exc:
        raise ConfigError("--service", [str(exc.args[0])]) from None
    if service.emulation is None:
        raise ConfigError("--service", [f"service {service_name!r} has no emulation block"])
    o = overrides or Overrides()
    try:
        profile = EmulationProfile.from_settings(service.emulation).with_overrides(
            error_rate=o.error_rate, cold_start_seconds=o.cold_start_seconds,
            max_concurrency=o.max_concurrency)
    except ValueError as exc:
        raise ConfigError(service_name, [str(exc)]) from None
    backend = settings.backend(service.backend)
    return EmulatorApp(model=service.model, kind=backend.kind, profile=profile,
                       health_path=backend.health_path, metrics_path=backend.metrics_path,
                       rng=rng)


MAX_REQUESTS_PER_CONNECTION = 16


async def serve(app: EmulatorApp, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    # SIGTERM lets answers in progress finish, as a pod does within its grace period
    config.graceful_timeout = 30.0
    config.keep_alive_timeout = 75.0  # above typical client pool idle times
    # close a keep-alive connection after this many requests (Connection: close), so a
    # client's pooled connections spread over replicas added since (Envoy's
    # max_requests_per_connection); the local pool gives new connections to the least busy
    config.keep_alive_max_requests = MAX_REQUESTS_PER_CONNECTION
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
