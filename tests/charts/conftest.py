"""Fixtures for the chart tests: the repository's charts copied to a temporary tree (so
`dependency_update` never writes into the working copy), rendering through the Helm
library, and the upstream schemas at `../shared` (or $PICKSPIN_SHARED)."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def helm() -> Any:
    return pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")


@pytest.fixture(scope="session")
def default_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


@pytest.fixture
def values(default_values: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the umbrella's values, to break or change."""
    return copy.deepcopy(default_values)


@pytest.fixture(scope="session")
def chart_tree(tmp_path_factory: pytest.TempPathFactory, helm: Any) -> Iterator[Path]:
    """charts/pickspin, knative/ and keda/ copied with their relative layout, dependencies
    resolved (file://../../knative, file://../../keda); yields the umbrella's folder."""
    root = tmp_path_factory.mktemp("charts")
    for part in ("charts/pickspin", "knative", "keda"):
        shutil.copytree(REPO / part, root / part,
                        ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    umbrella = root / "charts" / "pickspin"
    helm.dependency_update(umbrella)
    yield umbrella


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


@pytest.fixture(scope="session")
def render(helm: Any, chart_tree: Path) -> Render:
    """Render the umbrella chart with `values` (None = its defaults) and parse the objects."""

    def _render(values: dict[str, Any] | None = None, *, chart: Path | None = None
                ) -> list[dict[str, Any]]:
        with helm.Chart.load(chart or chart_tree) as loaded:
            manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE)
        return parse(manifests)

    return _render


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the test's bookkeeping key."""
    return {k: v for k, v in obj.items() if k != "__template__"}


def of_kind(objects: list[dict[str, Any]], kind: str, api: str | None = None
            ) -> list[dict[str, Any]]:
    return [o for o in objects
            if o["kind"] == kind and (api is None or o["apiVersion"].startswith(api))]
