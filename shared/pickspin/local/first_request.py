"""Send a first request to the running embedded default and show what Pick decided."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pickspin.local.stack import Stack


def main(argv: list[str] | None = None) -> int:
    from openai import OpenAI  # the official client, as a user would call us

    parser = argparse.ArgumentParser(prog="python -m pickspin.local.first_request")
    parser.add_argument("prompt", nargs="?", default="Define the word entropy in one sentence.")
    parser.add_argument("--model", default="pickspin/auto")
    parser.add_argument("--state-dir", default=os.environ.get("PICKSPIN_HOME") or ".pickspin")
    args = parser.parse_args(argv)
    stack = Stack.load(Path(args.state_dir).resolve())
    if stack is None:
        print("nothing is running: start it with `pickspin up`")
        return 1
    keys = [k for k in os.environ.get("PICKSPIN_API_KEYS", "").split(",") if k.strip()]
    client = OpenAI(base_url=stack.endpoint, api_key=keys[0].strip() if keys else "not-needed")
    raw = client.chat.completions.with_raw_response.create(
        model=args.model, max_tokens=24, messages=[{"role": "user", "content": args.prompt}])
    answer = raw.parse()
    print(f"\n> {args.prompt}\n{answer.choices[0].message.content}\n")
    for name, value in raw.headers.items():
        if name.startswith("x-pickspin-"):
            print(f"  {name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
