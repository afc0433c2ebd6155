"""`pickspin up | down | status | classify | train | replay | simulate`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pickspin.core.errors import ConfigError

# Verbs whose work lives in other modules: "module:function", each taking its own argv.
DELEGATED = {
    "classify": ("pickspin.training.commands:classify", "classify prompts (JSON out)"),
    "train": ("pickspin.training.commands:train", "train the complexity classifier"),
    "replay": ("pickspin.training.commands:replay", "offline routing-quality report"),
    "simulate": ("pickspin.sim.command:main",
                 "a request trace through Pick and Spin, against baselines"),
}


def _state_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("PICKSPIN_HOME") or ".pickspin").resolve()


def _up(args: argparse.Namespace) -> int:
    from pickspin.local.stack import up

    services = [s for s in (args.services or "").split(",") if s]
    print("starting pickspin (Prometheus, scaler, functions, backends) ...", flush=True)
    stack = up(args.config, _state_dir(args.state_dir), services=services,
               tick_seconds=args.tick, scale=not args.always_on,
               drain_seconds=args.drain_seconds)
    endpoint = stack.endpoint
    from pickspin.local.llamacpp import available

    missing = available()
    if missing and not args.always_on:
        print(f"  note   llama.cpp services run emulated: {missing}")
    print(f"\npickspin is up. OpenAI-compatible endpoint: {endpoint}")
    keyed = bool(os.environ.get("PICKSPIN_API_KEYS", "").strip())
    if keyed:
        print("API keys required (from $PICKSPIN_API_KEYS): pass "
              "-H 'Authorization: Bearer <one of them>' (the openai client's api_key)")
    else:
        print("open to anyone who can reach it: set PICKSPIN_API_KEYS=key1,key2 before "
              "`pickspin up` to require keys")
    auth = " -H 'Authorization: Bearer <key>'" if keyed else ""
    print("try it:\n"
          f"  curl -s {endpoint}/chat/completions{auth} -H 'content-type: application/json' \\\n"
          "    -d '{\"model\": \"pickspin/auto\", \"messages\": "
          "[{\"role\": \"user\", \"content\": \"Define entropy\"}]}' -D - \n"
          f"logs and state: {stack.state_dir}\nstop it with: pickspin down")
    return 0


def _down(args: argparse.Namespace) -> int:
    from pickspin.local.stack import down

    stopped = down(_state_dir(args.state_dir))
    print(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    from pickspin.local.status import services, status

    state_dir = _state_dir(args.state_dir)
    rows = status(state_dir)
    if not rows:
        print("nothing is running (no state in " + str(state_dir) + ")")
        return 1
    print(f"{'name':<26}{'kind':<11}{'pid':>8}  {'state':<11}{'restarts':>8}  url")
    for r in rows:
        print(f"{r['name']!s:<26}{r['kind']!s:<11}{r['pid']!s:>8}  {r['state']!s:<11}"
              f"{r['restarts']!s:>8}  {r['url']}"
              + (f"  (last exit: {r['last_exit']})" if r.get("last_exit") else ""))
    backends = services(state_dir)
    if backends:
        print(f"\n{'service':<34}{'runs':<10}{'replicas':>9}{'ready':>6}{'restarts':>9}"
              "  last crash")
        for name, s in backends.items():
            crash = s.get("last_crash")
            said = "-"
            if isinstance(crash, dict):
                ago = time.time() - float(crash.get("at") or 0)
                said = f"{crash.get('description')} (pid {crash.get('pid')}, {ago:.0f} s ago)"
            runs = "emulated" if s.get("emulated", True) else "real"
            print(f"{name:<34}{runs:<10}{s.get('replicas')!s:>9}{s.get('ready')!s:>6}"
                  f"{s.get('restarts')!s:>9}  {said}")
    return 0


def _delegate(target: str) -> Callable[[list[str]], int]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        try:
            runner = _delegate(DELEGATED[argv[0]][0])
        except ModuleNotFoundError as exc:
            print(f"pickspin {argv[0]}: not available in this build ({exc.name})",
                  file=sys.stderr)
            return 2
        return runner(argv[1:])
    parser = argparse.ArgumentParser(prog="pickspin", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", help="where state and logs go ($PICKSPIN_HOME, "
                        "default ./.pickspin)")
    p = sub.add_parser("up", parents=[common], help="start the embedded default")
    p.add_argument("--config", help="values file (default: $PICKSPIN_CONFIG or the chart's)")
    p.add_argument("--services", help="comma-separated services to run (default: all)")
    p.add_argument("--tick", type=float, default=5.0, help="telemetry tick seconds")
    p.add_argument("--drain-seconds", type=float, default=30.0,
                   help="on down, how long requests in flight may take to finish (default 30)")
    p.add_argument("--always-on", action="store_true",
                   help="run one replica of every service, no scaler (no scale to zero)")
    p.set_defaults(run=_up)
    sub.add_parser("down", parents=[common], help="stop what `up` started").set_defaults(
        run=_down)
    sub.add_parser("status", parents=[common], help="show what is running").set_defaults(
        run=_status)
    for verb, (_, help_) in DELEGATED.items():
        sub.add_parser(verb, help=help_, add_help=False)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"pickspin {args.verb}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
