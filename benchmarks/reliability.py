"""Reliability of the embedded default, probed from outside (issue 10's targets).

Scenarios, each against a fresh `pickspin up` with emulated backends:

- `startup`: clients start the moment the gateway answers `/v1/models` (before `up`
  returns): how many answers are >= 500.
- `zero`: requests sent within 100 ms of a service's scale-down to zero: answers >= 500.
- `kill`: 10 streaming clients while each process kind in turn is SIGKILLed (the gateway
  five times, its busiest replica each time): requests that failed before their first
  token, streams cut silently (no error event, no [DONE]), and how long the process took
  to answer its health check again.
- `load`: N streaming clients for S seconds: errors, TTFT p50/p99, listen-queue overflows,
  and the processes' open fds and RSS before and after.

Why each first attempt failed is counted too (an HTTP status, or the transport error: a
`ConnectError` is a refused connection, a `RemoteProtocolError` a connection closed before
any answer, a `ReadError` a reset). Load averages are printed with the figures: the machine
is shared.

Clients behave like the official `openai` client: a connection error, 429, 502 or 503 is
retried up to twice (0.5 s, then 1 s); both first-attempt and final failures are counted.

    python benchmarks/reliability.py --scenarios startup,zero,kill,load --load-clients 200
    python benchmarks/reliability.py --scenarios kill --gateways 2   # two gateway replicas
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from pickspin.core.telemetry import quantile as nearest_rank
from pickspin.local.demo import quick_spin_values
from pickspin.local.stack import Stack, down, up
from pickspin.local.status import services
from pickspin.local.supervisor import STABLE_SECONDS

REPO = Path(__file__).resolve().parents[1]
SMALL, MEDIUM = "gemma-3-27b-vllm", "llama-3-70b-vllm"
RETRY = {429, 502, 503}


@dataclass
class Tally:
    ok: int = 0
    first_attempt_failures: int = 0
    failed_before_stream: int = 0
    cut_with_error_event: int = 0
    cut_by_transport_error: int = 0  # the connection broke mid-stream (the client is told)
    cut_silently: int = 0  # a clean end without [DONE] or an error event: the dishonest one
    statuses: dict[int, int] = field(default_factory=dict)
    #: why first attempts failed: an HTTP status, or the transport error's class
    first_attempt_reasons: dict[str, int] = field(default_factory=dict)
    ttft: list[float] = field(default_factory=list)

    def first_failure(self, reason: str) -> None:
        self.first_attempt_failures += 1
        self.first_attempt_reasons[reason] = self.first_attempt_reasons.get(reason, 0) + 1

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in vars(self).items() if k != "ttft"}
        if self.ttft:
            out["ttft_p50_ms"] = round(nearest_rank(sorted(self.ttft), 0.5) * 1000, 1)
            out["ttft_p99_ms"] = round(nearest_rank(sorted(self.ttft), 0.99) * 1000, 1)
        return out


async def one(http: httpx.AsyncClient, url: str, tally: Tally, *, stream: bool,
              model: str = "pickspin/auto", max_tokens: int = 16) -> None:
    body = {"model": model, "stream": stream, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "Define entropy in one line"}]}
    for attempt in range(3):
        started = time.perf_counter()
        try:
            async with http.stream("POST", url, json=body) as answer:
                tally.statuses[answer.status_code] = tally.statuses.get(answer.status_code, 0) + 1
                if answer.status_code in RETRY:
                    raise _Retry(str(answer.status_code))
                if answer.status_code >= 400:
                    tally.failed_before_stream += 1
                    return
                if not stream:
                    await answer.aread()
                    tally.ok += 1
                    return
                first, done, error, broken = True, False, False, False
                try:
                    async for line in answer.aiter_lines():
                        if first and line.startswith("data: "):
                            tally.ttft.append(time.perf_counter() - started)
                            first = False
                        done |= line == "data: [DONE]"
                        error |= line.startswith('data: {"error"')
                except httpx.HTTPError:
                    broken = True
                if done:
                    tally.ok += 1
                elif first:  # nothing streamed yet: as good as failed before
                    raise _Retry("broken before the first token" if broken else
                                 "ended before the first token")
                elif error:
                    tally.cut_with_error_event += 1
                elif broken:
                    tally.cut_by_transport_error += 1
                else:
                    tally.cut_silently += 1
                return
        except (httpx.TransportError, _Retry) as exc:
            if attempt == 0:
                tally.first_failure(str(exc) if isinstance(exc, _Retry) else
                                    type(exc).__name__)
            if attempt == 2:
                tally.failed_before_stream += 1
                return
            await asyncio.sleep(0.5 * 2 ** attempt)


class _Retry(Exception):
    pass


async def clients(url: str, n: int, seconds: float, tally: Tally, *, stream: bool = True,
                  max_tokens: int = 16, stop: threading.Event | None = None) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as http:
        async def loop() -> None:
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                await one(http, url, tally, stream=stream, max_tokens=max_tokens)
        await asyncio.gather(*(loop() for _ in range(n)))


def values(tmp: Path, **spin: object) -> Path:
    data = quick_spin_values(yaml.safe_load((REPO / "charts/pickspin/values.yaml").read_text()),
                             (SMALL, MEDIUM), **spin)  # type: ignore[arg-type]
    for s in data["global"]["pickspin"]["services"]:
        s["emulation"].update(ttftMsMedian=40, ttftMsP99=120, tokensPerSecond=80,
                              coldStartSeconds=0.8)
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def startup(tmp: Path) -> dict[str, object]:
    state = tmp / "startup"
    result: dict[str, object] = {}
    starter = threading.Thread(target=lambda: result.update(stack=up(
        str(values(tmp, warm_pool={"small": 1, "medium": 1})), state, tick_seconds=1.0,
        log=False)))
    starter.start()
    url = None
    t0 = time.monotonic()
    while url is None and time.monotonic() - t0 < 120:
        stack = Stack.load(state)
        if stack is not None:  # the entry port exists before any gateway serves it
            try:
                if httpx.get(stack.endpoint + "/models", timeout=0.5).status_code == 200:
                    url = stack.endpoint
            except httpx.HTTPError:
                pass
        time.sleep(0.02)
    answered = time.monotonic() - t0
    tally = Tally()
    if url is not None:
        asyncio.run(clients(url + "/chat/completions", 10, 5.0, tally, stream=False))
    starter.join()
    down(state)
    return {"answered_from_s": round(answered, 2), **tally.to_json()}


def zero(tmp: Path, rounds: int = 3) -> dict[str, object]:
    state = tmp / "zero"
    stack = up(str(values(tmp, warm_pool={"small": 1}, cooldown_seconds=2)), state,
               tick_seconds=0.5, log=False)
    url = stack.endpoint + "/chat/completions"
    tally = Tally()
    try:
        for _ in range(rounds):
            http = httpx.Client(timeout=60)  # wake MEDIUM, then wait for its scale-down
            http.post(url, json={"model": "llama-3-70b", "max_tokens": 2,
                                 "messages": [{"role": "user", "content": "hi"}]})
            while services(state)[MEDIUM]["replicas"] == 0:
                time.sleep(0.02)
            while services(state)[MEDIUM]["replicas"] != 0:  # the scale-down
                time.sleep(0.01)

            async def burst() -> None:
                async with httpx.AsyncClient(timeout=60) as h:
                    await asyncio.gather(*(one(h, url, tally, stream=False, model="llama-3-70b")
                                           for _ in range(20)))
            asyncio.run(burst())  # sent within a few ms of the scale-down
            http.close()
    finally:
        down(state)
    return tally.to_json()


KINDS = ("classifier", "selector", "telemetry", "prometheus", "scaler", "replica", "gateway")


def kill(tmp: Path, gateways: int | None = None, gateway_kills: int = 5) -> dict[str, object]:
    """Each process kind killed once under load; the gateway `gateway_kills` times (its
    losses are rare events: one kill says little), the busiest replica each time, each kill
    `STABLE_SECONDS` after the last so that none meets a crash loop's longer back-off."""
    state = tmp / "kill"
    stack = up(str(values(tmp, warm_pool={"small": 1, "medium": 1})), state, tick_seconds=0.5,
               log=False, gateways=gateways)
    url = stack.endpoint + "/chat/completions"
    replicas = [p.name for p in stack.procs if p.name.split("-")[0] == "gateway"]
    out: dict[str, object] = {"gateway_replicas": len(replicas)}
    try:
        for kind in KINDS:
            tally, stop = Tally(), threading.Event()
            load = threading.Thread(target=lambda t=tally, s=stop: asyncio.run(
                clients(url, 10, 600, t, max_tokens=32, stop=s)))
            load.start()
            time.sleep(2.0)
            rounds = gateway_kills if kind == "gateway" else 1
            backs = []
            for i in range(rounds):
                if i:  # past the supervisor's crash-loop window, so each kill is a first one
                    time.sleep(STABLE_SECONDS)  # (not 0.2, 0.4, 0.8… s of growing back-off)
                backs.append(kill_once(state, busiest(state, replicas) if kind == "gateway"
                                       else kind))
            time.sleep(1.0)
            stop.set()
            load.join()
            known = [b for b in backs if b is not None]
            out[kind] = {"kills": rounds, "back_s": max(known) if len(known) == rounds else None,
                         "back_s_each": backs, **tally.to_json()}
            print(f"kill {kind}: {json.dumps(out[kind])} ({uptime()})", flush=True)
    finally:
        down(state)
    return out


def busiest(state: Path, names: list[str]) -> str:
    """The gateway replica holding the most client connections on the entry port (clients
    keep theirs alive, so after a kill the survivor holds them all): killing it is the
    worst case, the one reported."""
    stack = Stack.load(state)
    assert stack is not None and stack.entry is not None
    port = stack.entry.rsplit(":", 1)[1]
    listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
    held = {p.name: listing.count(f"pid={p.pid},") for p in stack.procs if p.name in names}
    return max(names, key=lambda n: held.get(n, 0))


def kill_once(state: Path, name: str) -> float | None:
    """SIGKILL one process (`replica`: a backend replica) and wait until it is back (its
    replacement answers its health check): the seconds that took, then 2 s more of load."""
    health = ""
    if name == "replica":
        victim = replica_pids(state)[0]
    else:
        proc = next(p for p in Stack.load(state).procs if p.name == name)  # type: ignore[union-attr]
        victim, health = proc.pid, (proc.url or "") + (proc.health or "")
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    back = None
    while back is None and time.monotonic() - killed < 30:
        try:
            if name == "replica":
                if int(str(services(state)[SMALL]["ready"])) >= 1 and \
                        victim not in replica_pids(state):
                    back = time.monotonic() - killed
            elif httpx.get(health, timeout=0.5).status_code == 200:
                p = next(p for p in Stack.load(state).procs if p.name == name)  # type: ignore[union-attr]
                if p.pid != victim:
                    back = time.monotonic() - killed
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    time.sleep(2.0)
    return None if back is None else round(back, 2)


def replica_pids(state: Path, service: str = SMALL) -> list[int]:
    pids = services(state)[service]["pids"]
    return [int(p) for p in pids] if isinstance(pids, list) else []


def uptime() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def usage(state: Path) -> dict[str, int]:
    """Open fds and RSS (KiB) summed over the stack's processes and replicas."""
    stack = Stack.load(state)
    pids = [p.pid for p in stack.procs] if stack else []
    for name in services(state):
        pids += replica_pids(state, name)
    fds = rss = 0
    for pid in pids:
        try:
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            rss += int(next(line.split()[1] for line in
                            Path(f"/proc/{pid}/status").read_text().splitlines()
                            if line.startswith("VmRSS")))
        except (OSError, StopIteration):
            pass
    return {"fds": fds, "rss_kib": rss, "processes": len(pids)}


def load(tmp: Path, n: int, seconds: float) -> dict[str, object]:
    state = tmp / "load"
    stack = up(str(values(tmp, warm_pool={"small": 1, "medium": 1})), state, tick_seconds=1.0,
               log=False)
    url = stack.endpoint + "/chat/completions"
    try:
        asyncio.run(clients(url, 4, 3.0, Tally()))  # warm up
        before = usage(state)
        tally = Tally()
        overflows, t0 = listen_overflows(), time.monotonic()
        asyncio.run(clients(url, n, seconds, tally, max_tokens=64))
        took, overflows = time.monotonic() - t0, listen_overflows() - overflows
        after = settled(state, url)
        # the same load again: what a leak would show as growth from one run to the next
        asyncio.run(clients(url, n, seconds / 4, Tally(), max_tokens=64))
        again = settled(state, url)
    finally:
        down(state)
    return {"clients": n, "seconds": round(took, 1), "requests_per_s": round(
        (tally.ok + tally.failed_before_stream) / took, 1), **tally.to_json(),
        "listen_overflows": overflows, "load_average": uptime(), "before": before,
        "after": after, "after_second_run": again}


def listen_overflows() -> int:
    """Connections the kernel dropped because a listen queue was full, machine-wide
    (`TcpExt ListenOverflows`; other programs on the machine count too)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()
             if line.startswith("TcpExt:")]
    return int(dict(zip(lines[0], lines[1], strict=True))["ListenOverflows"])


def settled(state: Path, url: str) -> dict[str, int]:
    """Usage once idle keep-alive connections had time to expire: the emulated servers keep
    one 75 s (the local pool holds both ends meanwhile), httpx prunes its own when its pool
    is next used (a few requests do that)."""
    time.sleep(80.0)
    asyncio.run(clients(url, 2, 1.0, Tally()))
    return usage(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="startup,zero,kill,load")
    parser.add_argument("--load-clients", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=120.0)
    parser.add_argument("--gateways", type=int, default=None,
                        help="gateway replicas (default: minScale in the values)")
    parser.add_argument("--gateway-kills", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "reliability.json")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this folder and keep it (the processes' logs) instead "
                             "of a temporary one")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"load_average_at_start": uptime()}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep else
          tempfile.TemporaryDirectory(prefix="pickspin-reliability-")) as tmp:
        for name in args.scenarios.split(","):
            started = time.monotonic()
            if name == "startup":
                report[name] = startup(Path(tmp))
            elif name == "zero":
                report[name] = zero(Path(tmp))
            elif name == "kill":
                report[name] = kill(Path(tmp), args.gateways, args.gateway_kills)
            elif name == "load":
                report[name] = load(Path(tmp), args.load_clients, args.load_seconds)
            else:
                print(f"unknown scenario {name!r}", file=sys.stderr)
                return 2
            print(f"{name} ({time.monotonic() - started:.0f} s): {json.dumps(report[name])}",
                  flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
