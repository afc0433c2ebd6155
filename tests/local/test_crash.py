"""How a local process died: exit signals, the kernel's fault report, the pool's record."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime

import pytest

from pickspin.local.crash import Crash, diagnose, fault_line, kernel_lines, reap
from pickspin.local.pool import ServicePool
from pickspin.local.processes import spawn

GPF = ("2026-11-29T15:01:02,123456+00:00 traps: python3[4321] general protection fault "
       "ip:7f3a1c2b4d5e sp:7ffd0c1b2a30 error:0 in libggml-cpu.so[7f3a1c200000+1e0000]")
SEGV = ("2026-11-29T15:01:05,000000+00:00 python3[4400]: segfault at 0 ip 00007f00 sp "
        "00007ffd error 4 in libc.so.6[7f0000000000+155000] likely on CPU 1")
OTHER = "2026-11-29T15:00:00,000000+00:00 EXT4-fs (vda): mounted filesystem"


def test_a_signal_is_named_and_the_faulting_library_quoted():
    crash = diagnose(4321, -11, 0.0, dmesg=lambda: [OTHER, GPF, SEGV])
    assert crash.signal_name == "SIGSEGV" and crash.crashed
    assert crash.library == "libggml-cpu.so"
    assert crash.describe() == "killed by SIGSEGV (fault in libggml-cpu.so)"
    assert crash.to_json()["signal"] == "SIGSEGV"


def test_a_fault_logged_for_a_thread_is_found_by_time_when_the_pid_differs():
    since = Crash(0, 0, 0).at  # 1970: every line is recent enough
    assert fault_line(9999, [OTHER, GPF, SEGV], since=since) == SEGV
    assert fault_line(9999, [OTHER, GPF, SEGV], since=None) is None
    # a fault logged before the process started is never blamed on it
    gpf_logged = datetime.fromisoformat("2026-11-29T15:01:02.123456+00:00").timestamp()
    assert fault_line(9999, [GPF], since=gpf_logged + 10) is None
    assert fault_line(9999, [GPF], since=gpf_logged) == GPF


def test_an_exit_code_or_a_stop_signal_is_not_a_crash():
    assert diagnose(1, 3, 0.0, dmesg=lambda: [GPF]).describe() == "exited with code 3"
    assert not diagnose(1, -15, 0.0, dmesg=lambda: []).crashed
    assert diagnose(1, None, 0.0).describe() == "ended (exit status unknown)"


def test_reap_returns_the_signal_of_a_child_that_segfaulted():
    child = subprocess.Popen([sys.executable, "-c",
                              "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    deadline = time.monotonic() + 10
    code = None
    while code is None and time.monotonic() < deadline:
        code = reap(child.pid)
        time.sleep(0.02)
    assert code == -11
    assert reap(child.pid) is None  # reaped once; not our child any more


def test_a_real_fault_is_found_in_the_kernel_log_with_its_library():
    if not kernel_lines():
        pytest.skip("the kernel log is not readable here (dmesg)")
    since = time.time()
    child = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"],
                           check=False)
    assert child.returncode == -11
    found = None
    for _ in range(20):  # the kernel may log it a moment later
        found = diagnose(0, child.returncode, time.time(), since=since)
        if found.library:
            break
        time.sleep(0.1)
    assert found is not None and found.kernel and "segfault" in found.kernel
    assert found.library


async def test_the_pool_records_a_crashed_replica_and_replaces_it(tmp_path):
    started: list[int] = []

    def launch(service: str, port: int):
        # first replica dies by SIGSEGV at once; its replacement stays up
        script = ("import os, signal, time\n"
                  f"os.kill(os.getpid(), signal.SIGSEGV) if {not started} else time.sleep(60)")
        proc = spawn(f"{service}-{port}", "replica", [sys.executable, "-c", script], env={},
                     cwd=None, log_dir=tmp_path, port=port)
        started.append(proc.pid)
        return proc

    pool = ServicePool("svc", 0, "/health", launch)
    try:
        await pool.scale_to(1)
        deadline = time.monotonic() + 10
        while pool.restarts == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            pool.reap()
        assert pool.restarts == 1
        crash = pool.last_crash
        assert crash is not None and crash.pid == started[0]
        assert crash.signal_name == "SIGSEGV"
        assert [r.proc.pid for r in pool.replicas] == [started[1]]  # replaced
    finally:
        await pool.close()
