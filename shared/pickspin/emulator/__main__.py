"""`python -m pickspin.emulator --service gemma-3-27b-vllm --port 8101`"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from pickspin.core.errors import ConfigError
from pickspin.core.settings import Settings
from pickspin.emulator.server import Overrides, build_app, serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pickspin.emulator",
        description="Serve one emulated model backend (model × vLLM/TGI/TensorRT-LLM) with "
        "the OpenAI API, the real server's metric names and its latency profile. "
        "No model runs: the text is filler.")
    p.add_argument("--service", required=True, help="service name, e.g. gemma-3-27b-vllm")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--config", default=None,
                   help="values file (default: $PICKSPIN_CONFIG, else the chart's values.yaml)")
    p.add_argument("--error-rate", type=float, default=None,
                   help="override emulation.errorRate (env PICKSPIN_EMULATOR_ERROR_RATE)")
    p.add_argument("--cold-start-seconds", type=float, default=None,
                   help="override emulation.coldStartSeconds "
                   "(env PICKSPIN_EMULATOR_COLD_START_SECONDS)")
    p.add_argument("--max-concurrency", type=int, default=None,
                   help="override emulation.maxConcurrency "
                   "(env PICKSPIN_EMULATOR_MAX_CONCURRENCY)")
    p.add_argument("--seed", type=int, default=None, help="seed the TTFT and error draws")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        overrides = Overrides(error_rate=args.error_rate,
                              cold_start_seconds=args.cold_start_seconds,
                              max_concurrency=args.max_concurrency).over(Overrides.from_env())
        app = build_app(Settings.load(args.config), args.service, overrides,
                        rng=random.Random(args.seed))
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    print(f"pickspin emulator: {args.service} on {args.host}:{args.port} "
          f"(metrics at {sorted(app.metrics_paths)}, cold start "
          f"{app.profile.cold_start_seconds:.1f} s)", file=sys.stderr, flush=True)
    asyncio.run(serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
