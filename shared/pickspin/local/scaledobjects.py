"""The keda chart's own ScaledObjects, rendered for the local values and read back as the
inputs of `pickspin.policy.decide` — so the local scaler applies exactly what KEDA would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pickspin.policy import ScalingParams
from pickspin.settings import Settings

KEDA_CHART = Path(__file__).resolve().parents[3] / "keda"


@dataclass(frozen=True)
class Trigger:
    name: str
    query: str
    threshold: float
    activation_threshold: float


@dataclass(frozen=True)
class LocalScaledObject:
    """One rendered ScaledObject: its policy numbers and the queries behind its triggers."""

    params: ScalingParams
    demand: Trigger
    pending: Trigger


def render(settings: Settings, prometheus_url: str, polling_interval: int = 1,
           chart: Path = KEDA_CHART) -> list[dict[str, Any]]:
    """Render the keda chart (Helm v4 as a library) and return its ScaledObjects."""
    import helm_python

    values = {
        "global": {"pickspin": settings.dump(), "prometheus": {"serverAddress": prometheus_url}},
        "scaling": {"pollingInterval": polling_interval},
    }
    with helm_python.Chart.load(str(chart)) as loaded:
        manifests = loaded.render(values, name="pickspin", namespace="pickspin")
    objects = []
    for text in manifests.values():
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "ScaledObject":
                objects.append(doc)
    return objects


def read(obj: dict[str, Any]) -> LocalScaledObject:
    """A rendered ScaledObject → policy parameters and the queries behind its triggers."""
    triggers = {t["name"]: _trigger(t) for t in obj["spec"]["triggers"]}
    return LocalScaledObject(ScalingParams.from_scaled_object(obj), triggers["demand"],
                             triggers["pending"])


def _trigger(t: dict[str, Any]) -> Trigger:
    meta = t["metadata"]
    return Trigger(t["name"], meta["query"], float(meta["threshold"]),
                   float(meta.get("activationThreshold", 0)))


def load(settings: Settings, prometheus_url: str, polling_interval: int = 1
         ) -> dict[str, LocalScaledObject]:
    """Service name → its rendered ScaledObject (the chart names them <model>-<backend>)."""
    return {so.params.service: so for so in
            (read(o) for o in render(settings, prometheus_url, polling_interval))}
