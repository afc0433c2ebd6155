"""The supervisor of the local run: restarts with back-off, records how a process ended,
stops everything in reverse order; and port reservations that survive restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from pickspin.local.processes import listen_socket, pid_alive, reserve_port
from pickspin.local.supervisor import Spec, Supervisor, backoff, read_plan, read_state, write_plan


def test_backoff_doubles_from_a_fifth_of_a_second_up_to_ten():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert backoff(30) == 10.0


def test_the_plan_round_trips(tmp_path):
    specs = [Spec("a", "function", ["x", "-y"], {"K": "v"}, "/tmp", 8080, "/health", 30.0),
             Spec("b", "function", ["x"], pass_fds=(5, 6))]
    write_plan(tmp_path / "plan.json", specs)
    assert read_plan(tmp_path / "plan.json") == specs


def test_a_process_that_dies_is_restarted_with_back_off_and_its_end_recorded(tmp_path):
    now = [0.0]
    dies = Spec("dies", "function", [sys.executable, "-c", "raise SystemExit(3)"])
    sup = Supervisor([dies], tmp_path / "state.json", tmp_path / "logs", clock=lambda: now[0])
    sup.start_all()
    child = sup.children[0]
    first = child.pid
    deadline = time.monotonic() + 10
    while child.pid is not None and time.monotonic() < deadline:
        sup.tick()
        time.sleep(0.02)
    assert child.pid is None and child.last_exit is not None
    assert child.last_exit.describe() == "exited with code 3"
    assert child.restart_at == 0.2  # first back-off
    state = read_state(tmp_path / "state.json")["dies"]
    assert state["state"] == "restarting" and state["last_exit"]["returncode"] == 3
    now[0] = 0.21
    sup.tick()
    assert child.pid not in (None, first) and child.restarts == 1
    sup.stop_all()


def test_a_killed_process_is_recorded_as_killed_even_if_other_processes_start_meanwhile(
        tmp_path):
    # a Popen started elsewhere in the supervisor's process (another restart, dmesg) reaps
    # every finished child whose Popen object was dropped; the supervisor keeps its own, so
    # the exit status is still there for it to read
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    sup = Supervisor([Spec("a", "function", sleeper)], tmp_path / "state.json",
                     tmp_path / "logs")
    sup.start_all()
    child = sup.children[0]
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    stat = Path(f"/proc/{child.pid}/stat")
    while stat.read_text().split(")")[-1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)  # dead, not yet reaped by anyone
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    while child.pid is not None and time.monotonic() < deadline:
        sup.tick()
        time.sleep(0.01)
    assert child.last_exit is not None
    assert child.last_exit.describe() == "killed by SIGKILL"
    sup.stop_all()


def test_stop_all_ends_every_process(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    sup = Supervisor([Spec("a", "function", sleeper), Spec("b", "function", sleeper)],
                     tmp_path / "state.json", tmp_path / "logs")
    stopping = threading.Event()
    runner = threading.Thread(target=sup.run, args=(stopping,))
    runner.start()
    deadline = time.monotonic() + 10
    while len(read_state(tmp_path / "state.json")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = [c["pid"] for c in read_state(tmp_path / "state.json").values()]
    assert all(pid_alive(int(p)) for p in pids)
    stopping.set()
    runner.join(timeout=20)
    assert not any(pid_alive(int(p)) for p in pids)


def test_a_reserved_port_is_free_for_its_process_again_and_again_but_no_one_else():
    held = reserve_port()
    port = held.getsockname()[1]
    try:
        for _ in range(2):  # a process, then its restart
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            server.close()
        intruder = socket.socket()
        try:
            intruder.bind(("127.0.0.1", port))
            raise AssertionError("another socket took the reserved port")
        except OSError:
            pass
        finally:
            intruder.close()
    finally:
        held.close()


def test_a_process_that_cannot_be_started_is_tried_again_not_fatal(tmp_path):
    now = [0.0]
    missing = Spec("gone", "function", [str(tmp_path / "no-such-program")])
    sup = Supervisor([missing], tmp_path / "state.json", tmp_path / "logs", clock=lambda: now[0])
    sup.start_all()  # does not raise
    child = sup.children[0]
    assert child.pid is None and child.restart_at == 0.2
    now[0] = 0.3
    sup.tick()
    assert child.pid is None and child.restart_at == 0.3 + 0.4  # backing off


# answers every connection with its pid, from the listening socket it inherited as fd argv[1]
ACCEPTOR = ("import os, socket, sys\n"
            "s = socket.socket(fileno=int(sys.argv[1]))\n"
            "while True:\n"
            "    c, _ = s.accept(); c.sendall(str(os.getpid()).encode()); c.close()\n")


def test_children_serve_the_listening_socket_it_holds_and_it_is_let_go_on_stop(tmp_path):
    entry = listen_socket(backlog=16)
    address = entry.getsockname()
    fd = entry.detach()  # the supervisor's now, as `up` hands it over
    specs = [Spec(name, "function", [sys.executable, "-c", ACCEPTOR, str(fd)], pass_fds=(fd,))
             for name in ("gateway", "gateway-2")]
    sup = Supervisor(specs, tmp_path / "state.json", tmp_path / "logs")
    sup.start_all()
    try:
        pids = {c.pid for c in sup.children}
        answered = set()
        # both accept from the one socket; one still starting (a busy machine) answers later,
        # so ask until both have or 30 s have passed, not a fixed number of times
        deadline = time.monotonic() + 30
        while answered != pids and time.monotonic() < deadline:
            with socket.create_connection(address, timeout=10) as conn:
                answered.add(int(conn.recv(64)))
            time.sleep(0.005)
        assert answered == pids
    finally:
        sup.stop_all()
    try:  # the last copy is gone with the children: the port refuses, holds nothing
        socket.create_connection(address, timeout=5).close()
        raise AssertionError("the entry port still accepted connections after stop_all")
    except ConnectionRefusedError:
        pass
