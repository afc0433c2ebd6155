"""`pickspin.local.serve`: a function served as func serves it, from a listening socket the
processes inherit — shared by replicas, held while none runs — with the backlog and the
keep-alive the local run sets. Real processes on real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pickspin.local.processes import listen_socket, pid_alive, wait_http
from pickspin.local.serve import Listening

FUNCTION = '''
import os

class Hello:
    async def handle(self, scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

def new():
    return Hello()
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "function").mkdir()
    (tmp_path / "function" / "__init__.py").write_text(FUNCTION)
    (tmp_path / "func.yaml").write_text("name: hello\ninvoke: http\n")
    return tmp_path


@pytest.fixture
def entry() -> Iterator[socket.socket]:
    sock = listen_socket(backlog=300)
    yield sock
    sock.close()


def serve(folder: Path, listening: Listening) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "LISTEN_ADDRESS"}
    return subprocess.Popen([sys.executable, "-m", "pickspin.local.serve", str(folder)],
                            env={**env, **listening.to_env()}, cwd=folder,
                            pass_fds=listening.fds, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_the_options_round_trip_through_the_environment():
    listening = Listening((7, 9), backlog=512, keep_alive=75.0)
    assert Listening.from_env(listening.to_env()) == listening
    assert Listening.from_env({}) == Listening((), 100, 5.0)  # hypercorn's own defaults


def test_replicas_share_the_inherited_socket_and_one_dying_leaves_the_other_answering(
        folder, entry):
    listening = Listening((entry.fileno(),), backlog=300, keep_alive=75.0)
    replicas = [serve(folder, listening) for _ in range(2)]
    try:
        assert wait_http(url(entry), 30)
        # hypercorn listens with the backlog asked for (ss shows it as a listener's Send-Q)
        ss = subprocess.run(["ss", "-ltnH", f"sport = :{entry.getsockname()[1]}"],
                            capture_output=True, text=True, check=True).stdout.split()
        assert ss[2] == "300"
        kill(replicas[0])
        answers = {httpx.get(url(entry), timeout=10).text for _ in range(20)}
        assert answers == {str(replicas[1].pid)}
    finally:
        for proc in replicas:
            kill(proc)


def test_a_connection_made_while_no_replica_runs_waits_for_one_instead_of_being_refused(
        folder, entry):
    listening = Listening((entry.fileno(),), backlog=300, keep_alive=75.0)
    first = serve(folder, listening)
    assert wait_http(url(entry), 30)
    kill(first)
    assert not pid_alive(first.pid)
    # nothing serves the port now, yet a connection is made (the kernel queues it on the
    # socket the test holds, as the supervisor holds the gateway's) and its request waits
    with socket.create_connection(entry.getsockname(), timeout=60) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        second = serve(folder, listening)
        try:
            answer = read_all(conn)
        finally:
            kill(second)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\n" + str(second.pid).encode() + b"\r\n" in answer  # the (chunked) body


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_an_idle_keep_alive_connection_is_kept_as_long_as_asked(folder, entry):
    """With one second asked, the server closes an idle connection (hypercorn's default is
    5 s; the local run asks for more than any client keeps one)."""
    proc = serve(folder, Listening((entry.fileno(),), keep_alive=1.0))
    try:
        assert wait_http(url(entry), 30)
        with socket.create_connection(entry.getsockname(), timeout=20) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            # a keep-alive answer, then the end: the server closed it (a timeout would raise)
            assert read_all(conn).startswith(b"HTTP/1.1 200")
    finally:
        kill(proc)
