"""Start, watch and stop local processes; each in its own session so `down` stops all of it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from pickspin.local.crash import keep, reap


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` at once (readers never see half a file). The file is the
    owner's only (mkstemp's 0600): plans hold the run's token."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it). Another socket may
    take it before it is bound again: where that matters, hold a `reserve_port` instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """Hold a port for a process that will bind it later: a socket bound with SO_REUSEADDR
    that never listens. While it is open, the process (binding with SO_REUSEADDR, as
    hypercorn, uvicorn, asyncio servers and Prometheus do) can listen on the port, again
    after every restart, while no other socket can take it (not even as the local port of
    an outgoing connection, which is what made a chosen-then-bound port collide)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def listen_socket(backlog: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket that processes inherit and serve in turn (`pickspin.local.serve`):
    while the one that holds it lives, connections to its port queue in its accept queue
    (up to `backlog`, capped by `net.core.somaxconn`) until a process accepts them, so a
    server's restart is a wait, not a refusal."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


@dataclass(frozen=True)
class Proc:
    """A process `up` started: enough to find, probe and stop it later."""

    name: str
    kind: str  # function | backend | ticker
    pid: int
    port: int | None
    url: str | None
    health: str | None
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def spawn(name: str, kind: str, argv: list[str], *, env: dict[str, str], cwd: Path | None,
          log_dir: Path, port: int | None = None, health: str | None = None,
          pass_fds: Sequence[int] = ()) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            argv, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=tuple(pass_fds),
        )
    keep(child)  # its end stays ours to read (crash.keep)
    url = f"http://127.0.0.1:{port}" if port else None
    return Proc(name, kind, child.pid, port, url, health, str(log_path))


def python() -> str:
    return sys.executable


def wait_http(url: str, timeout: float, *, ok_only: bool = True,
              alive: Proc | None = None) -> bool:
    """Poll `url` until it answers (200 if `ok_only`), the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive.alive():
            return False
        try:
            answer = httpx.get(url, timeout=1.0)
            if answer.status_code == 200 or not ok_only:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def stop(proc: Proc, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and proc.alive():
            reap(proc.pid)
            time.sleep(0.05)
        if not proc.alive():
            reap(proc.pid)  # if it was our child
            return
