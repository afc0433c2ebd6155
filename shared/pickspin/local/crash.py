"""Why a local process died: its exit signal and, from the kernel log, the library it
faulted in.

A native code crash (a SIGSEGV or a general protection fault in `libggml-cpu.so`, say) kills
a backend between two bytes of its answer; the client only sees the connection go away. The
kernel logs the fault with the faulting library (`... general protection fault ip:… error:0
in libggml-cpu.so[7f…+…]`), so the process that started the backend can say what happened.

>>> Crash(pid=4321, returncode=-11, at=0.0, library="libggml-cpu.so").describe()
'killed by SIGSEGV (fault in libggml-cpu.so)'
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

# `… segfault at 0 ip … error 4 in libggml-cpu.so[7f…+1e000]` and
# `traps: python3[4321] general protection fault ip:… error:0 in libggml-cpu.so[…]`
FAULT_WORDS = ("segfault", "general protection", "trap", "invalid opcode")
LIBRARY = re.compile(r" in ([^\s\[]+)\[")
ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d\d:?\d\d) (.*)$")

Dmesg = Callable[[], Sequence[str]]


@dataclass(frozen=True)
class Crash:
    """How one process ended: `returncode` as subprocess reports it (negative = signal;
    None = unknown, when it was not our child to reap)."""

    pid: int
    returncode: int | None
    at: float  # wall-clock seconds when it was seen dead
    library: str | None = None
    kernel: str | None = None  # the kernel's line about the fault, if it logged one

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def crashed(self) -> bool:
        """Killed by a fault signal rather than asked to stop (SIGTERM/SIGKILL/SIGINT)."""
        return self.returncode is not None and self.returncode < 0 and -self.returncode not in {
            signal.SIGTERM, signal.SIGKILL, signal.SIGINT}

    def describe(self) -> str:
        if self.returncode is None:
            return "ended (exit status unknown)"
        if self.signal_name is None:
            return f"exited with code {self.returncode}"
        where = f" (fault in {self.library})" if self.library else ""
        return f"killed by {self.signal_name}{where}"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "signal": self.signal_name, "description": self.describe()}


# The Popen of every child we started, by pid, until `reap` reads its end. A dropped Popen
# whose process still runs joins subprocess's `_active` list, and the next Popen anywhere in
# this process (a restart, a replica, `dmesg`) reaps it there, leaving `reap` no exit status
# to read ("exit status unknown" instead of "killed by SIGSEGV").
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def keep(child: subprocess.Popen[bytes]) -> None:
    """Hold `child`'s Popen until `reap` has read how it ended."""
    _STARTED[child.pid] = child


def reap(pid: int) -> int | None:
    """The exit code of our own child `pid` once it has ended (negative: the signal), else
    None (still running, or not our child)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        _STARTED.pop(pid, None)
        return None
    if done == 0:
        return None
    _STARTED.pop(pid, None)
    return os.waitstatus_to_exitcode(status)


def kernel_lines() -> list[str]:
    """The kernel log with wall-clock times (`dmesg --time-format iso`); empty if unreadable."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["dmesg", "--time-format", "iso"], capture_output=True,
                             text=True, timeout=5, check=False)
        if out.returncode == 0:
            return out.stdout.splitlines()
    return []


def fault_line(pid: int, lines: Sequence[str], since: float | None = None) -> str | None:
    """The kernel's last fault report for `pid`, else (the fault may name one of its
    threads) the last fault report logged after `since` (wall-clock seconds)."""
    faults = [line for line in lines if any(w in line for w in FAULT_WORDS)]
    own = [line for line in faults if f"[{pid}]" in line]
    if own:
        return own[-1]
    if since is None:
        return None
    recent = [line for line in faults if (_when(line) or 0.0) >= since - 1.0]
    return recent[-1] if recent else None


def _when(line: str) -> float | None:
    match = ISO_TIME.match(line)
    if not match:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(match.group(1).replace(",", ".")).timestamp()
    return None


def diagnose(pid: int, returncode: int | None, at: float, *, since: float | None = None,
             dmesg: Dmesg = kernel_lines) -> Crash:
    """A `Crash` for a process that ended with `returncode`; for a signal, the faulting
    library from the kernel log when the kernel logged one."""
    library = kernel = None
    if returncode is not None and returncode < 0:
        kernel = fault_line(pid, dmesg(), since)
        if kernel is not None:
            found = LIBRARY.search(kernel)
            library = found.group(1) if found else None
    return Crash(pid, returncode, at, library, kernel)
