"""Shared fixtures: the default settings, function loading, an ASGI driver."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pickspin.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "charts" / "pickspin" / "values.yaml"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.load(VALUES)


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/function/func.py under a unique module name."""
    path = REPO / "functions" / name / "function" / "func.py"
    spec = importlib.util.spec_from_file_location(f"pickspin_function_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


async def call(fn: Any, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes = b"") -> Reply:
    """Drive `fn.handle(scope, receive, send)` like func-python does, with a fake send."""
    headers = {**(headers or {}), "content-length": str(len(body))}
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    out: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await fn.handle(scope, receive, send)
    return Reply(out["status"], out["headers"], out["body"])


@pytest.fixture
def start_function() -> Iterator[Any]:
    """Build and start a function with the default settings; stop it afterwards."""
    started: list[Any] = []

    def make(name: str, env: dict[str, str] | None = None) -> Any:
        fn = load_function(name).new()
        fn.start({**os.environ, "PICKSPIN_CONFIG": str(VALUES), **(env or {})})
        started.append(fn)
        return fn

    yield make
    for fn in started:
        fn.stop()
