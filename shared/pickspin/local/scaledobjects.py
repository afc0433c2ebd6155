"""The keda chart's own ScaledObjects, rendered for the local values and read back as the
inputs of `pickspin.core.policy.decide` — so the local scaler applies exactly what KEDA would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pickspin.core.policy import ScalingParams
from pickspin.core.settings import Settings

KEDA_CHART = Path(__file__).resolve().parents[3] / "keda"


@dataclass(frozen=True)
class Trigger:
    """A prometheus trigger. With `ignore_null_values` false (the chart's setting) an empty
    answer is a failed poll, not a zero: the gateway exports every series from its start."""

    name: str
    query: str
    threshold: float
    activation_threshold: float
    ignore_null_values: bool = True


@dataclass(frozen=True)
class Fallback:
    """KEDA `fallback`: after `failure_threshold` failed polls in a row, `replicas` as
    `behavior` says (`currentReplicasIfHigher`: the running count if it is more)."""

    failure_threshold: int
    replicas: int
    behavior: str = "static"


@dataclass(frozen=True)
class LocalScaledObject:
    """One rendered ScaledObject: its policy numbers, the queries behind its triggers and
    what KEDA does when they fail."""

    params: ScalingParams
    demand: Trigger
    pending: Trigger
    fallback: Fallback | None = None


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
    # the cron triggers (scheduled warm pools) are read into the params; they query nothing
    triggers = {t["name"]: _trigger(t) for t in obj["spec"]["triggers"]
                if t.get("type", "prometheus") == "prometheus"}
    fallback = obj["spec"].get("fallback")
    return LocalScaledObject(
        ScalingParams.from_scaled_object(obj), triggers["demand"], triggers["pending"],
        Fallback(int(fallback["failureThreshold"]), int(fallback["replicas"]),
                 str(fallback.get("behavior", "static"))) if fallback else None)


def _trigger(t: dict[str, Any]) -> Trigger:
    meta = t["metadata"]
    # KEDA reads the string case-insensitively and defaults to true
    ignore = str(meta.get("ignoreNullValues", "true")).strip().lower() != "false"
    return Trigger(t["name"], meta["query"], float(meta["threshold"]),
                   float(meta.get("activationThreshold", 0)), ignore)


def load(settings: Settings, prometheus_url: str, polling_interval: int = 1
         ) -> dict[str, LocalScaledObject]:
    """Service name → its rendered ScaledObject (the chart names them <model>-<backend>)."""
    return {so.params.service: so for so in
            (read(o) for o in render(settings, prometheus_url, polling_interval))}
