"""Stand-in for Knative's PingSource: POST a `dev.knative.sources.ping` event every N seconds."""

from __future__ import annotations

import argparse
import os
import signal
import threading

import httpx

from pickspin.adapters.cehttp import EventClient
from pickspin.core.eventauth import TOKEN_ENV
from pickspin.core.events import EventType, make_event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickspin.local.ping")
    parser.add_argument("--sink", required=True, help="URL the tick events go to")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between ticks")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    client = EventClient(timeout=10.0, token=os.environ.get(TOKEN_ENV))  # signed ticks
    while not stopping.wait(args.every):
        try:
            client.send(args.sink, make_event(EventType.PING, {"tick": True},
                                              "/pickspin/local/ping"))
        except httpx.HTTPError as exc:
            print(f"tick to {args.sink} failed: {exc}", flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
