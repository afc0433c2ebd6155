"""Start emulator processes on free ports for the tests.

>>> port = free_port()                                         # doctest: +SKIP
>>> proc = start_emulator("gemma-3-27b-vllm", port)            # doctest: +SKIP
>>> stop_emulator(proc)                                        # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from pickspin.emulator.server import emulator_command
from pickspin.local.processes import free_port, wait_http

__all__ = ["emulator_command", "free_port", "is_listening", "start_emulator", "stop_emulator",
           "wait_ready"]


def is_listening(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_emulator(
    service: str,
    port: int | None = None,
    config_path: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    error_rate: float | None = None,
    cold_start_seconds: float | None = None,
    max_concurrency: int | None = None,
    seed: int | None = None,
    timeout: float = 20.0,
    log_path: str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `python -m pickspin.emulator` and return once it accepts TCP connections.

    The process may still be in its (emulated) cold start: `wait_ready` polls `/health`.
    Its output goes to `log_path` (by default a temporary file that `stop_emulator` removes).
    Raises RuntimeError with the log's tail, after stopping it, if it exits or does not
    listen within `timeout` seconds. The port is also set as `proc.emulator_port`.
    """
    port = free_port(host) if port is None else port
    cmd = emulator_command(service, port, config_path, host=host, error_rate=error_rate,
                           cold_start_seconds=cold_start_seconds,
                           max_concurrency=max_concurrency, seed=seed)
    temporary_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"pickspin-emulator-{service}-", suffix=".log")
        os.close(fd)
        log_path = name
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    proc.emulator_port = port  # type: ignore[attr-defined]
    proc.emulator_temporary_log = log_path if temporary_log else None  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if is_listening(host, port):
            return proc
        time.sleep(0.05)
    tail = Path(log_path).read_text(errors="replace")[-2000:]
    stop_emulator(proc)  # removes a temporary log: its tail is quoted here instead
    raise RuntimeError(f"emulator {service} did not start listening on {host}:{port} "
                       f"(exit code {proc.returncode}); its log ended with:\n{tail}")


def wait_ready(base_url: str, timeout: float = 30.0, health_path: str = "/health") -> bool:
    """Poll `health_path` until it answers 200 (the cold start is over); False on timeout."""
    return wait_http(base_url.rstrip("/") + health_path, timeout)


def stop_emulator(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds; removes the
    temporary log `start_emulator` made for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    temporary_log = getattr(proc, "emulator_temporary_log", None)
    if temporary_log:
        Path(temporary_log).unlink(missing_ok=True)
