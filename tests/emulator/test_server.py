"""Building an emulator from the settings, overrides from flags and environment, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pickspin.core.errors import ConfigError
from pickspin.core.settings import BackendKind, Settings
from pickspin.emulator.server import Overrides, build_app
from tests.emulator.launch import emulator_command, free_port, is_listening


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.load()


def test_every_service_builds_with_its_kind_and_paths(settings: Settings) -> None:
    for service in settings.services:
        app = build_app(settings, service.name)
        backend = settings.backend(service.backend)
        assert app.kind is backend.kind
        assert app.model == service.model
        assert backend.metrics_path in app.metrics_paths
        assert app.profile.cold_start_seconds == service.emulation.cold_start_seconds  # type: ignore[union-attr]


def test_overrides_reach_the_profile(settings: Settings) -> None:
    app = build_app(settings, "deepseek-r1-trtllm",
                    Overrides(error_rate=1.0, cold_start_seconds=0.0, max_concurrency=2))
    assert (app.profile.error_rate, app.profile.cold_start_seconds) == (1.0, 0.0)
    assert app.profile.max_concurrency == 2
    assert app.kind is BackendKind.TRTLLM and app.metrics.path == "/prometheus/metrics"


def test_unknown_service_and_bad_override_are_config_errors(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown service"):
        build_app(settings, "gpt-4-vllm")
    with pytest.raises(ConfigError, match="error_rate"):
        build_app(settings, "gemma-3-27b-vllm", Overrides(error_rate=2.0))


def test_service_without_emulation_block_is_refused(settings: Settings) -> None:
    services = tuple(s.model_copy(update={"emulation": None}) for s in settings.services)
    bare = settings.model_copy(update={"services": services})
    with pytest.raises(ConfigError, match="no emulation block"):
        build_app(bare, "gemma-3-27b-vllm")


def test_environment_overrides_and_flag_precedence() -> None:
    env = Overrides.from_env({"PICKSPIN_EMULATOR_ERROR_RATE": "0.5",
                              "PICKSPIN_EMULATOR_COLD_START_SECONDS": "",
                              "PICKSPIN_EMULATOR_MAX_CONCURRENCY": "3"})
    assert env == Overrides(error_rate=0.5, cold_start_seconds=None, max_concurrency=3)
    flags = Overrides(error_rate=0.0)
    assert flags.over(env) == Overrides(error_rate=0.0, max_concurrency=3)
    with pytest.raises(ConfigError):
        Overrides.from_env({"PICKSPIN_EMULATOR_ERROR_RATE": "lots"})


def test_command_line_carries_only_given_options() -> None:
    cmd = emulator_command("gemma-3-27b-tgi", 9001, error_rate=1.0)
    assert cmd[1:] == ["-m", "pickspin.emulator", "--service", "gemma-3-27b-tgi",
                       "--port", "9001", "--host", "127.0.0.1", "--error-rate", "1.0"]


def test_free_port_is_free() -> None:
    port = free_port()
    assert 0 < port < 65536 and not is_listening("127.0.0.1", port)


@pytest.mark.integration
def test_cli_exits_2_on_an_unknown_service() -> None:
    done = subprocess.run([sys.executable, "-m", "pickspin.emulator", "--service", "nope",
                           "--port", str(free_port())], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 2
    assert "unknown service 'nope'" in done.stderr


@pytest.mark.integration
def test_start_emulator_reports_a_process_that_dies() -> None:
    from tests.emulator.launch import start_emulator

    with pytest.raises(RuntimeError, match="unknown service"):
        start_emulator("nope-vllm", timeout=20)
