"""Fixtures for the chart tests: the repository's charts copied to a temporary tree (so
`dependency_update` never writes into the working copy) and rendering through the Helm
library. Helpers are in chart_helpers.py."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import NAMESPACE, RELEASE, REPO, VALUES, Render, parse


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


@pytest.fixture(scope="session")
def render(helm: Any, chart_tree: Path) -> Render:
    """Render the umbrella chart with `values` (None = its defaults) and parse the objects."""

    def _render(values: dict[str, Any] | None = None, *, chart: Path | None = None
                ) -> list[dict[str, Any]]:
        with helm.Chart.load(chart or chart_tree) as loaded:
            manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE)
        return parse(manifests)

    return _render
