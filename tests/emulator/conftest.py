"""Start real emulator processes on free ports; every process is stopped at teardown."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.emulator.launch import start_emulator, stop_emulator

Start = Callable[..., str]


@pytest.fixture
def start_backend() -> Iterator[Start]:
    """`start_backend(service, **overrides) -> base URL` of a running emulator."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(service: str, **overrides: object) -> str:
        proc = start_emulator(service, **overrides)  # type: ignore[arg-type]
        procs.append(proc)
        return f"http://127.0.0.1:{proc.emulator_port}"  # type: ignore[attr-defined]

    yield start
    for proc in procs:
        stop_emulator(proc)
