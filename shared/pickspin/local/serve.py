"""Serve a function folder as func's scaffold does — `function.new` under func-python's own
ASGI application for the folder's `invoke` (`http` or `cloudevent`), run by hypercorn on
the addresses `LISTEN_ADDRESS` names — plus the socket options of the local run that
func-python has no setting for (its `serve` builds hypercorn's config itself):

- `PICKSPIN_LISTEN_FDS`: listening sockets inherited from the supervisor, served as
  hypercorn's `fd://N` binds (func-python's `LISTEN_ADDRESS` refuses `fd://`). The
  gateway's entry port is one: the supervisor holds it for the whole run and every gateway
  replica accepts from it, so a connection that arrives while a replica restarts waits in
  the kernel's accept queue for a live one (as Knative's activator holds a request for a
  pod) instead of being refused.
- `PICKSPIN_LISTEN_BACKLOG`: the listen backlog (hypercorn's default, 100, is what a burst
  of more new connections than that overflows).
- `PICKSPIN_KEEP_ALIVE_SECONDS`: how long an idle keep-alive connection is kept. hypercorn's
  default, 5 s, equals the idle expiry of httpx (and so of the `openai` client): a client
  that reuses a connection idle for about 5 s races the server's close and gets "Server
  disconnected without sending a response" or a reset (measured: 21 of 778 requests sent
  after 4.95–5.05 s idle; none with 30 s). A server that keeps connections longer than its
  clients do never closes one under a request.

    python -m pickspin.local.serve functions/gateway
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pickspin.core.errors import ConfigError

FDS_ENV, BACKLOG_ENV = "PICKSPIN_LISTEN_FDS", "PICKSPIN_LISTEN_BACKLOG"
KEEP_ALIVE_ENV = "PICKSPIN_KEEP_ALIVE_SECONDS"
# hypercorn's own defaults, kept where the run sets none
DEFAULT_BACKLOG, DEFAULT_KEEP_ALIVE = 100, 5.0


@dataclass(frozen=True)
class Listening:
    """The socket options of a served function (see the module docstring)."""

    fds: tuple[int, ...] = ()
    backlog: int = DEFAULT_BACKLOG
    keep_alive: float = DEFAULT_KEEP_ALIVE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Listening:
        return cls(tuple(int(fd) for fd in env.get(FDS_ENV, "").split(",") if fd.strip()),
                   int(env.get(BACKLOG_ENV) or DEFAULT_BACKLOG),
                   float(env.get(KEEP_ALIVE_ENV) or DEFAULT_KEEP_ALIVE))

    def to_env(self) -> dict[str, str]:
        return {BACKLOG_ENV: str(self.backlog), KEEP_ALIVE_ENV: str(self.keep_alive),
                **({FDS_ENV: ",".join(map(str, self.fds))} if self.fds else {})}


def invoke_of(folder: Path) -> str:
    """The func-python middleware a function folder's func.yaml asks for."""
    invoke = yaml.safe_load((folder / "func.yaml").read_text()).get("invoke", "http")
    if invoke not in ("http", "cloudevent"):
        raise ConfigError(str(folder / "func.yaml"),
                          [f"invoke {invoke!r}: want http or cloudevent"])
    return str(invoke)


def serve(new: Callable[[], Any], invoke: str, listening: Listening) -> None:
    """func-python's `serve(new)`, with the inherited sockets, the backlog and the keep-alive
    set on the hypercorn config it builds (everything else — lifecycle, health routes,
    signals — is func-python's own)."""
    import func_python.sock
    import hypercorn.config

    middleware = importlib.import_module(f"func_python.{invoke}")

    class Application(middleware.ASGIApplication):  # type: ignore[name-defined,misc]
        def serve(self) -> None:
            cfg = hypercorn.config.Config()
            cfg.bind = [*(func_python.sock.bind() if os.environ.get("LISTEN_ADDRESS") else []),
                        *(f"fd://{fd}" for fd in listening.fds)]
            cfg.backlog = listening.backlog
            cfg.keep_alive_timeout = listening.keep_alive
            return asyncio.run(self._serve(cfg))  # type: ignore[no-any-return]

    Application(new()).serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickspin.local.serve")
    parser.add_argument("folder", type=Path, help="the function's folder (holds func.yaml)")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    invoke = invoke_of(folder)
    sys.path.insert(0, str(folder))  # func's scaffold installs the folder as `function`
    function = importlib.import_module("function")
    serve(function.new, invoke, Listening.from_env(os.environ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
