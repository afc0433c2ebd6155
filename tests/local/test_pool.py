"""The local Service stand-in: held requests at zero (the activator's job), probes refused,
new connections to the least busy replica."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from pickspin.local.pool import ServicePool
from pickspin.local.processes import Proc, free_port, spawn

# a tiny HTTP server answering every request with its own port
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _answer(self):
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        body = sys.argv[1].encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = _answer
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def launcher(logs: Path):
    def launch(service: str, port: int) -> Proc:
        return spawn(f"{service}-{port}", "replica", [sys.executable, "-c", SERVER, str(port)],
                     env={}, cwd=None, log_dir=logs, port=port, health="/")
    return launch


async def ready(pool: ServicePool, count: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pool.ready_count < count:
        assert loop.time() < deadline, "replicas did not become ready"
        await pool.check()
        await asyncio.sleep(0.05)


async def test_at_zero_a_request_is_held_until_a_replica_is_ready(tmp_path):
    pool = ServicePool("svc", free_port(), "/", launcher(tmp_path), hold_seconds=30)
    await pool.serve()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pool.port}") as client:
            held = asyncio.create_task(client.post("/v1/completions", json={}, timeout=30))
            await asyncio.sleep(0.5)
            assert not held.done() and pool.waiting == 1  # the scaler sees it as demand
            await pool.scale_to(1)
            await ready(pool, 1)
            answer = await held
        assert answer.status_code == 200
        assert answer.text == str(pool.replicas[0].port)
        assert pool.waiting == 0
    finally:
        await pool.close()


async def test_at_zero_a_probe_is_refused_at_once_and_wakes_nothing(tmp_path):
    pool = ServicePool("svc", free_port(), "/", launcher(tmp_path), hold_seconds=30)
    await pool.serve()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pool.port}") as client:
            try:
                await client.get("/health", timeout=5)
                raise AssertionError("a probe at zero replicas was answered")
            except httpx.HTTPError:
                pass
        assert pool.waiting == 0
    finally:
        await pool.close()


async def test_a_new_connection_goes_to_the_replica_with_the_fewest(tmp_path):
    pool = ServicePool("svc", free_port(), "/", launcher(tmp_path))
    await pool.serve()
    try:
        await pool.scale_to(1)
        await ready(pool, 1)
        first = pool.replicas[0]
        busy = [httpx.Client(base_url=f"http://127.0.0.1:{pool.port}") for _ in range(3)]
        for c in busy:  # three kept-alive connections, all on the first replica
            assert (await asyncio.to_thread(c.post, "/x")).text == str(first.port)
        await pool.scale_to(2)
        await ready(pool, 2)
        second = next(r for r in pool.replicas if r is not first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pool.port}") as fresh:
            answers = [(await fresh.post("/x")).text for _ in range(3)]
        assert answers == [str(second.port)] * 3
        for c in busy:
            c.close()
    finally:
        await pool.close()
