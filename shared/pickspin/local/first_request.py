"""Send a first request to the running embedded default and show what Pick decided."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

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
    client = OpenAI(base_url=stack.endpoint, api_key=keys[0].strip() if keys else "not-needed",
                    timeout=120)
    real = [m.id for m in client.models.list() if m.owned_by == "pickspin"
            and not m.id.startswith("pickspin/")]
    if real and args.model == "pickspin/auto":
        # a real model's own answer first (emulated services stream filler text)
        ask(client, args.prompt, real[0], headers=False)
    ask(client, args.prompt, args.model, headers=True)
    return 0


def ask(client: Any, prompt: str, model: str, *, headers: bool) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, max_tokens=24, messages=[{"role": "user", "content": prompt}])
    answer = raw.parse()
    emulated = raw.headers.get("x-pickspin-emulated") == "true"
    print(f"\n> {prompt}   [model {model}]\n{answer.choices[0].message.content}")
    print(f"  answered by {raw.headers['x-pickspin-model']} on {raw.headers['x-pickspin-backend']}"
          + (" (emulated: filler text, no model behind it)" if emulated else " (a real model)"))
    if headers:
        for name, value in raw.headers.items():
            if name.startswith("x-pickspin-"):
                print(f"  {name}: {value}")

if __name__ == "__main__":
    raise SystemExit(main())
