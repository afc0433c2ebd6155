"""Keeps every process of the local run alive, as a kubelet keeps a pod's containers.

`pickspin up` writes a plan (the processes in start order) and starts this supervisor in a
session of its own. It starts each process, restarts one that dies with an exponential
back-off (reset once it has run for a while), records how each one ended, and on SIGTERM
stops them all in reverse order: SIGTERM, then SIGKILL after the process' grace. Its state
file is what `pickspin status` and `pickspin down` read.

    python -m pickspin.local.supervisor --plan run/plan.json --state run/supervisor.json

It also holds the port reservations `up` made (inherited file descriptors: bound, never
listening, SO_REUSEADDR) for the whole run, so no other socket can take a process' port
between two of its lives, and a restarted process gets the same one. A listening socket a
process serves by inheritance (`Spec.pass_fds`: the gateway's entry port, shared by its
replicas) is held the same way, so connections wait in its queue while no replica runs; the
supervisor lets go of it when it stops, so that once the last replica is gone the port
refuses instead of holding connections nobody will answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pickspin.local.crash import Crash, diagnose, keep, reap
from pickspin.local.processes import Proc, atomic_write, pid_alive, stop

# back-off before the n-th consecutive restart: 0.2 s, 0.4 s, … capped at 10 s
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0
# a process that ran this long counts as having recovered: its back-off starts over
STABLE_SECONDS = 30.0


@dataclass(frozen=True)
class Spec:
    """One process to keep running."""

    name: str
    kind: str  # function | backend | scaler | prometheus | ticker
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    port: int | None = None
    health: str | None = None
    grace: float = 5.0  # seconds between SIGTERM and SIGKILL when stopping
    #: a signal that asks the process to drain and exit by itself within `grace` (then
    #: SIGTERM and SIGKILL as usual), e.g. "SIGUSR1" for the gateway
    drain_signal: str | None = None
    #: inherited listening sockets the process serves (same numbers as in the supervisor)
    pass_fds: tuple[int, ...] = ()

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None


def backoff(consecutive: int) -> float:
    """Seconds to wait before the `consecutive`-th restart in a row (1-based; pure)."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(consecutive - 1, 0)))


@dataclass
class Child:
    spec: Spec
    log: Path
    pid: int | None = None
    started: float = 0.0
    restarts: int = 0
    consecutive: int = 0
    restart_at: float | None = None
    last_exit: Crash | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.spec.name, "kind": self.spec.kind, "pid": self.pid,
                "port": self.spec.port, "url": self.spec.url, "health": self.spec.health,
                "log": str(self.log), "restarts": self.restarts,
                "state": "running" if self.pid else "restarting",
                "last_exit": self.last_exit.to_json() if self.last_exit else None}


class Supervisor:
    def __init__(self, specs: Sequence[Spec], state: Path, logs: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.children = [Child(s, logs / f"{s.name}.log") for s in specs]
        self.state = state
        self.logs = logs
        self.clock = clock

    def start(self, child: Child) -> None:
        """Start the process; one that cannot even be started (its program or folder gone)
        is tried again after its back-off, like one that died."""
        self.logs.mkdir(parents=True, exist_ok=True)
        spec = child.spec
        try:
            with open(child.log, "ab") as log:
                proc = subprocess.Popen(
                    spec.argv, env={**os.environ, **spec.env}, cwd=spec.cwd, stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                    pass_fds=spec.pass_fds)
        except OSError as exc:
            child.consecutive += 1
            child.pid, child.restart_at = None, self.clock() + backoff(child.consecutive)
            print(f"{spec.name} could not be started: {exc}; trying again", flush=True)
            return
        keep(proc)  # its end stays ours to read (crash.keep)
        child.pid, child.started, child.restart_at = proc.pid, self.clock(), None

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)
        self.write_state()

    def tick(self) -> bool:
        """Notice processes that ended and restart those whose back-off is over; True if
        anything changed."""
        now, changed = self.clock(), False
        for child in self.children:
            if child.pid is not None:
                if pid_alive(child.pid):  # a zombie is not alive: look first, then reap
                    continue
                code = reap(child.pid)
                child.last_exit = diagnose(child.pid, code, time.time())
                if now - child.started >= STABLE_SECONDS:
                    child.consecutive = 0
                child.consecutive += 1
                child.pid, child.restart_at = None, now + backoff(child.consecutive)
                print(f"{child.spec.name} {child.last_exit.describe()}; restarting in "
                      f"{child.restart_at - now:.1f} s", flush=True)
                changed = True
            if child.pid is None and child.restart_at is not None and now >= child.restart_at:
                self.start(child)
                child.restarts += 1
                changed = True
        if changed:
            self.write_state()
        return changed

    def stop_all(self) -> None:
        """Reverse start order: the entry points first, so nothing new arrives downstream.
        Processes that drain are all asked at once (two gateway replicas drain together,
        not one after the other), and the shared listening sockets are let go first."""
        for fd in {fd for child in self.children for fd in child.spec.pass_fds}:
            with contextlib.suppress(OSError):
                os.close(fd)
        deadlines = {}
        for child in self.children:
            if child.pid is not None and child.spec.drain_signal:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.Signals[child.spec.drain_signal])
                deadlines[child.spec.name] = time.monotonic() + child.spec.grace
        for child in reversed(self.children):
            if child.pid is None:
                continue
            proc = _as_proc(child)
            if child.spec.drain_signal:
                deadline = deadlines[child.spec.name]
                while proc.alive() and time.monotonic() < deadline:
                    reap(child.pid)
                    time.sleep(0.05)
            stop(proc, 5.0 if child.spec.drain_signal else child.spec.grace)
            child.pid = None
        self.write_state()

    def write_state(self) -> None:
        data = {"supervisor": os.getpid(), "children": [c.to_json() for c in self.children]}
        atomic_write(self.state, json.dumps(data, indent=2))

    def run(self, stopping: threading.Event, every: float = 0.1) -> None:
        self.start_all()
        try:
            while not stopping.wait(every):
                self.tick()
        finally:
            self.stop_all()


def _as_proc(child: Child) -> Proc:
    assert child.pid is not None
    return Proc(child.spec.name, child.spec.kind, child.pid, child.spec.port, child.spec.url,
                child.spec.health, str(child.log))


def write_plan(path: Path, specs: Sequence[Spec]) -> None:
    """The plan, readable by its owner only (its envs hold the run's internal token)."""
    atomic_write(path, json.dumps([asdict(s) for s in specs], indent=2))


def read_plan(path: Path) -> list[Spec]:
    return [Spec(**{**entry, "pass_fds": tuple(entry.get("pass_fds", ()))})
            for entry in json.loads(path.read_text())]


def read_state(path: Path) -> dict[str, dict[str, object]]:
    """The supervisor's last written state, by process name (empty if none)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(c["name"]): c for c in data.get("children", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickspin.local.supervisor")
    parser.add_argument("--plan", required=True, help="JSON list of the processes to run")
    parser.add_argument("--state", required=True, help="where to write what runs")
    parser.add_argument("--logs", required=True, help="folder for the processes' logs")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    Supervisor(read_plan(Path(args.plan)), Path(args.state), Path(args.logs)).run(stopping)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
