"""Helpers of the chart tests: where things are, parsing rendered manifests, and the
upstream schemas at `../shared` (or $PICKSPIN_SHARED). Fixtures live in conftest.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "charts" / "pickspin" / "values.yaml"
RELEASE = "pickspin"
NAMESPACE = "pickspin"

Render = Callable[..., list[dict[str, Any]]]


def shared_dir() -> Path:
    """`$PICKSPIN_SHARED`, else `../shared` beside the repository root."""
    return Path(os.environ.get("PICKSPIN_SHARED") or REPO.parent / "shared")


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test saying what is missing."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the upstream schemas live in ../shared "
                    "(set PICKSPIN_SHARED to point elsewhere)")
    return path


def parse(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Rendered templates → objects, each with its template path under `__template__`."""
    objects = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__template__"] = template
                objects.append(doc)
    return objects


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the test's bookkeeping key."""
    return {k: v for k, v in obj.items() if k != "__template__"}


def of_kind(objects: list[dict[str, Any]], kind: str, api: str | None = None
            ) -> list[dict[str, Any]]:
    return [o for o in objects
            if o["kind"] == kind and (api is None or o["apiVersion"].startswith(api))]
