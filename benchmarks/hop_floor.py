"""The floor under the gateway's overhead: what the hops cost with no pickspin code in them.

The gateway's path adds, to a request sent straight to a backend: the gateway function's
own server (an `invoke: http` func-python function), two CloudEvent request/replies (the
classifier's and the selector's `invoke: cloudevent` functions) and one more client hop
(the gateway's call to the backend). This script serves do-nothing functions exactly as
`pickspin up` serves the real ones (`python -m pickspin.local.serve`: func-python's own
middleware under hypercorn) and a bare asyncio HTTP server, and times each round trip from
one aiohttp client (the gateway's client), one request at a time, the targets interleaved
so that they share the machine's noise:

- `echo-cloudevent`: func-python's cloudevent middleware decodes the event, the function
  sends it back in binary mode (no signing, no validation, no work);
- `echo-http`: func-python's http middleware, the function reads the body and answers 200;
- `bare`: an asyncio protocol that answers every request with a fixed 200 (the client, the
  kernel and an event loop: what any extra hop costs at least).

Each round trip includes the client's and the kernel's share. Beyond the direct request,
the gateway's path makes the trips client → gateway, gateway → classifier and gateway →
selector, and replaces client → backend by gateway → backend (one bare hop either way), so

    floor = echo-http + 2 × echo-cloudevent

is the least the gateway's overhead can be with func-python's servers, before any of
pickspin's own work. CPU per round trip is each server process's utime+stime over the run.

With `--gap-ms 50` every round trip follows 50 ms in which the servers idle, as each of
the gateway benchmark's requests follows the direct half of the previous pair: on this
2-vCPU VM a process woken after idling costs about twice its hot CPU (cold caches and a
halted vCPU to wake), so that is the floor to hold the gateway's concurrency-1 figures to.

With `--functions` the real classifier (keyword router) and selector are asked too, signed
as `pickspin up` runs them and sent the events the gateway sends, beside an echo function sent
the very same events: the difference is what pickspin's own work (verifying, validating,
classifying or selecting, signing the reply) adds to each hop.

    python benchmarks/hop_floor.py --requests 2000
    python benchmarks/hop_floor.py --requests 1000 --gap-ms 50
    python benchmarks/hop_floor.py --requests 400 --gap-ms 50 --functions
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from pickspin.local.processes import Proc, free_port, spawn, stop, wait_http

REPO = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
ECHO_CLOUDEVENT = """
class Echo:
    async def handle(self, scope, receive, send):
        await send.binary(scope["event"])

def new():
    return Echo()
"""
ECHO_HTTP = """
class Ok:
    async def handle(self, scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

def new():
    return Ok()
"""
BARE = """
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\ncontent-type: application/json\\r\\n\\r\\n{}"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, d):
        self.buf += d
        while b"\\r\\n\\r\\n" in self.buf:
            head, _, rest = self.buf.partition(b"\\r\\n\\r\\n")
            n = next((int(l.split(b":")[1]) for l in head.split(b"\\r\\n")
                      if l.lower().startswith(b"content-length")), 0)
            if len(rest) < n: return
            self.buf = rest[n:]
            self.t.write(ANSWER)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(P, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""
# The gateway's path with no pickspin code in it (`gateway_overhead.py --floor`): an
# `invoke: http` function that asks two echo CloudEvent functions in turn (the classifier's
# and the selector's hops), relays the stream of the backend named in `x-floor-backend`
# (aiohttp, pooled, as the gateway does), and afterwards posts one more event to a third
# echo function (`inference.completed` to telemetry).
FLOOR_GATEWAY = """
import asyncio, os
from typing import Any

import aiohttp
import httpx

EVENT = {"ce-specversion": "1.0", "ce-type": "io.pickspin.prompt.received",
         "ce-source": "/floor", "ce-id": "1", "content-type": "application/json"}
BODY = b'{"request_id": "r", "prompt": "Explain why the sky is blue"}'

class FloorGateway:
    session = None

    async def handle(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        for url in (os.environ["FLOOR_CLASSIFIER"], os.environ["FLOOR_SELECTOR"]):
            async with self.session.post(url, data=BODY, headers=EVENT) as reply:
                await reply.read()
        backend = dict(scope["headers"])[b"x-floor-backend"].decode()
        async with self.session.post(backend + "/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"}) as reply:
            await send({"type": "http.response.start", "status": reply.status,
                        "headers": [(b"content-type", b"text/event-stream")]})
            async for chunk in reply.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        asyncio.ensure_future(self.emit())

    async def emit(self):
        async with self.session.post(os.environ["FLOOR_TELEMETRY"], data=BODY,
                                     headers=EVENT) as reply:
            await reply.read()

def new():
    return FloorGateway()
"""
EVENT_HEADERS = {"ce-specversion": "1.0", "ce-type": "io.pickspin.prompt.received",
                 "ce-source": "/bench", "ce-id": "1", "content-type": "application/json"}
BODY = b'{"request_id": "r", "prompt": "Explain why the sky is blue"}'


def function_folder(root: Path, name: str, invoke: str, code: str) -> Path:
    folder = root / name
    (folder / "function").mkdir(parents=True)
    (folder / "func.yaml").write_text(f"specVersion: 0.36.0\nname: {name}\nruntime: python\n"
                                      f"invoke: {invoke}\n")
    (folder / "function" / "__init__.py").write_text(textwrap.dedent(code))
    return folder


def start_floor(root: Path, logs: Path) -> tuple[list[Proc], str]:
    """The floor chain as real processes served like the functions (`FLOOR_GATEWAY`): an
    echo function for each of the classifier, selector and telemetry, and the floor
    gateway in front; returns them and the gateway's URL."""
    procs, urls = [], {}
    for name in ("classifier", "selector", "telemetry"):
        folder = function_folder(root, f"floor-{name}", "cloudevent", ECHO_CLOUDEVENT)
        port = free_port()
        procs.append(spawn(f"floor-{name}", "floor", [sys.executable, "-m",
                                                      "pickspin.local.serve", str(folder)],
                           env={"LISTEN_ADDRESS": f"127.0.0.1:{port}"}, cwd=None,
                           log_dir=logs, port=port, health="/health/readiness"))
        urls[f"FLOOR_{name.upper()}"] = f"http://127.0.0.1:{port}/"
    folder = function_folder(root, "floor-gateway", "http", FLOOR_GATEWAY)
    port = free_port()
    procs.append(spawn("floor-gateway", "floor", [sys.executable, "-m", "pickspin.local.serve",
                                                  str(folder)],
                       env={"LISTEN_ADDRESS": f"127.0.0.1:{port}", **urls}, cwd=None,
                       log_dir=logs, port=port, health="/health/readiness"))
    for proc in procs:
        if not wait_http(f"{proc.url}{proc.health}", 30):
            for started in procs:
                stop(started)
            raise SystemExit(f"{proc.name} did not start; see {proc.log}")
    return procs, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


Target = tuple[str, dict[str, str], bytes]  # URL, headers, body


async def run(targets: dict[str, Target], requests: int, warmup: int,
              gap: float = 0.0) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in targets}
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(warmup + requests):
            for name, (url, headers, body) in targets.items():
                if gap:  # every process idle before the trip, as between a user's requests
                    await asyncio.sleep(gap)
                start = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    assert answer.status == 200, (name, answer.status)
                if i >= warmup:
                    times[name].append((time.perf_counter() - start) * 1000)
    return times


def real_functions(root: Path, logs: Path) -> tuple[dict[str, Proc], dict[str, Target]]:
    """The real classifier (keyword router) and selector (the chart's matrix, every service
    healthy), signed as `pickspin up` runs them, with the events the gateway sends them; and
    the same two events sent to an echo function, so each real hop has its own floor."""
    from pickspin.core.eventauth import TOKEN_ENV, Signer
    from pickspin.core.events import (
        EventType,
        PromptClassified,
        PromptReceived,
        RouteRequest,
        ServiceStats,
        make_event,
    )
    from pickspin.core.settings import DEFAULT_VALUES, Settings
    from pickspin.core.telemetry import Probe, snapshot_of

    token = os.urandom(16).hex()
    signer = Signer(token)
    settings = Settings.load(DEFAULT_VALUES)

    def signed(type_: EventType, data: Any) -> tuple[dict[str, str], bytes]:
        message = signer.encode(make_event(type_, data, "/bench"))
        return dict(message.headers), message.body

    route = RouteRequest(router="keyword")
    received = signed(EventType.PROMPT_RECEIVED, PromptReceived(
        request_id="r", route=route, prompt="Explain why the sky is blue"))
    classified = signed(EventType.PROMPT_CLASSIFIED, PromptClassified(
        request_id="r", complexity="low", probabilities={"low": 1.0, "medium": 0.0,
                                                          "high": 0.0},
        router="keyword", elapsed_ms=0.01, route=route))
    snapshot = signed(EventType.TELEMETRY_SNAPSHOT, snapshot_of(
        {s.name: ServiceStats() for s in settings.services},
        {s.name: Probe() for s in settings.services}, time.time() + 3600, 60.0))
    procs: dict[str, Proc] = {}
    env = {TOKEN_ENV: token, "PICKSPIN_CONFIG": str(DEFAULT_VALUES)}
    for name in ("classifier", "selector"):
        port = free_port()
        procs[name] = spawn(name, "function", [sys.executable, "-m", "pickspin.local.serve",
                                               str(REPO / "functions" / name)],
                            env={**env, "LISTEN_ADDRESS": f"127.0.0.1:{port}"}, cwd=None,
                            log_dir=logs, port=port, health="/health/readiness")
    port = free_port()
    procs["echo-signed"] = spawn("echo-signed", "function", [
        sys.executable, "-m", "pickspin.local.serve",
        str(function_folder(root, "echo-signed", "cloudevent", ECHO_CLOUDEVENT))],
        env={"LISTEN_ADDRESS": f"127.0.0.1:{port}"}, cwd=None, log_dir=logs, port=port,
        health="/health/readiness")
    for proc in procs.values():
        if not wait_http(f"{proc.url}{proc.health}", 60):
            raise SystemExit(f"{proc.name} did not start; see {proc.log}")
    answer = httpx.post(f"{procs['selector'].url}/", headers=snapshot[0], content=snapshot[1])
    answer.raise_for_status()  # the selector routes on a snapshot with every service healthy
    echo = f"{procs['echo-signed'].url}/"
    return procs, {"classifier": (f"{procs['classifier'].url}/", *received),
                   "echo-received": (echo, *received),
                   "selector": (f"{procs['selector'].url}/", *classified),
                   "echo-classified": (echo, *classified)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="idle time before each round trip (the gateway benchmark's "
                             "requests each follow ~50 ms in which the functions idle)")
    parser.add_argument("--functions", action="store_true",
                        help="also the real classifier (keyword) and selector, signed, with "
                             "the gateway's events, beside an echo function sent the same "
                             "events: what pickspin's own work adds to each hop")
    args = parser.parse_args(argv)
    procs: dict[str, Proc] = {}
    with tempfile.TemporaryDirectory(prefix="pickspin-hop-floor-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        folders = {"echo-cloudevent": function_folder(root, "echo-ce", "cloudevent",
                                                      ECHO_CLOUDEVENT),
                   "echo-http": function_folder(root, "echo-http", "http", ECHO_HTTP)}
        try:
            for name, folder in folders.items():
                port = free_port()
                procs[name] = spawn(name, "function", [sys.executable, "-m",
                                                       "pickspin.local.serve", str(folder)],
                                    env={"LISTEN_ADDRESS": f"127.0.0.1:{port}"}, cwd=None,
                                    log_dir=logs, port=port, health="/health/readiness")
            port = free_port()
            bare = root / "bare.py"
            bare.write_text(BARE)
            procs["bare"] = spawn("bare", "server", [sys.executable, str(bare), str(port)],
                                  env={}, cwd=None, log_dir=logs, port=port, health="/")
            for proc in procs.values():
                if proc.health and not wait_http(f"{proc.url}{proc.health}", 30):
                    raise SystemExit(f"{proc.name} did not start; see {proc.log}")
            targets: dict[str, Target] = {
                name: (f"{proc.url}/", EVENT_HEADERS if name == "echo-cloudevent" else
                       {"content-type": "application/json"}, BODY)
                for name, proc in procs.items()}
            if args.functions:
                started, real_targets = real_functions(root, logs)
                procs.update(started)
                targets.update(real_targets)
            time.sleep(0.5)
            before = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
            times = asyncio.run(run(targets, args.requests, args.warmup, args.gap_ms / 1000))
            after = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
        finally:
            for proc in procs.values():
                stop(proc)
    load = os.getloadavg()[0]
    gap = f", {args.gap_ms:g} ms idle before each" if args.gap_ms else ""
    print(f"{args.requests} round trips each, one at a time, interleaved{gap}; load {load:.1f}")
    trips = {name: sum(1 for t in targets.values() if t[0] == f"{proc.url}/")
             for name, proc in procs.items()}  # echo-signed answers two targets
    for name, values in times.items():
        owner = next(p for p, proc in procs.items() if f"{proc.url}/" == targets[name][0])
        per = (after[owner] - before[owner]) / (args.requests + args.warmup) * 1000 \
            / trips[owner]
        print(f"  {name:<16} p50 {statistics.median(values):6.2f} ms  p99 "
              f"{pct(values, 0.99):6.2f} ms  server CPU {per:5.2f} ms per round trip")
    floor50 = statistics.median(times["echo-http"]) + 2 * statistics.median(
        times["echo-cloudevent"])
    print(f"floor of the gateway's overhead (echo-http + 2 x echo-cloudevent), p50: "
          f"{floor50:.2f} ms")
    if args.functions:
        for hop, echo in (("classifier", "echo-received"), ("selector", "echo-classified")):
            added = statistics.median(times[hop]) - statistics.median(times[echo])
            print(f"pickspin's own work in the {hop} hop (p50 over the echo of the same "
                  f"event): {added:+.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
