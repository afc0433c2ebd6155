"""The embedded default as real processes on real ports, shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from pickspin.local.stack import Stack, down, up
from tests.conftest import VALUES


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`pickspin up --always-on` with the default values: every service of the matrix,
    emulated, one warm replica each (Spin's scale to zero has its own tests)."""
    state = tmp_path_factory.mktemp("pickspin-up")
    running = up(str(VALUES), state, tick_seconds=1.0, scale=False, timeout=120, log=False)
    try:
        yield running
    finally:
        down(state)


@pytest.fixture(scope="session")
def client(stack: Stack) -> OpenAI:
    return OpenAI(base_url=stack.endpoint, api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.endpoint.removesuffix("/v1")


def url_of(stack: Stack, name: str) -> str:
    proc = next(p for p in stack.procs if p.name == name)
    assert proc.url
    return proc.url


def post_json(url: str, body: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json", **headers},
                      timeout=30)


def log_of(stack: Stack, name: str) -> str:
    proc = next(p for p in stack.procs if p.name == name)
    return Path(proc.log).read_text(errors="replace")
