"""The strict validator fails what `kubectl --validate=strict` would fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chart_helpers import require_shared
from strict_openapi import CrdSchemas, strictify

SCALED_OBJECT: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "m-vllm"},
    "spec": {
        "scaleTargetRef": {"name": "m-vllm"},
        "minReplicaCount": 0,
        "maxReplicaCount": 4,
        "cooldownPeriod": 300,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
            "scaleDown": {"stabilizationWindowSeconds": 120, "tolerance": "10m"}}}},
        "triggers": [{"type": "prometheus", "metadata": {"query": "sum(x)", "threshold": "8"}}],
    },
}


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return CrdSchemas.load(require_shared("schemas", "openapi"))


def test_a_correct_scaled_object_passes(crds: CrdSchemas) -> None:
    assert crds.errors(SCALED_OBJECT) == []


@pytest.mark.parametrize("where, typo", [
    (("spec",), "cooldownPeriods"),
    (("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown"),
     "stabilisationWindowSeconds"),
    (("metadata",), "labelz"),
])
def test_a_misspelled_field_fails(crds: CrdSchemas, where: tuple[str, ...], typo: str) -> None:
    broken = copy.deepcopy(SCALED_OBJECT)
    node = broken
    for key in where:
        node = node[key]
    node[typo] = 1
    errors = crds.errors(broken)
    assert any(typo in e for e in errors), errors


def test_int_or_string_accepts_both_and_nothing_else(crds: CrdSchemas) -> None:
    obj = copy.deepcopy(SCALED_OBJECT)
    down = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    down["tolerance"] = 1
    assert crds.errors(obj) == []
    down["tolerance"] = [1]
    assert crds.errors(obj)


def test_preserve_unknown_fields_lets_extra_fields_through(crds: CrdSchemas) -> None:
    trigger = {
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
        # spec.delivery is x-kubernetes-preserve-unknown-fields upstream (delivery.timeout)
        "spec": {"broker": "default", "delivery": {"timeout": "PT1S"},
                 "subscriber": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "s"}}},
    }
    assert crds.errors(trigger) == []
    trigger["spec"]["subscriber"]["reff"] = {}
    assert crds.errors(trigger)


def test_strictify_closes_only_objects_that_list_properties() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "string"}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"c": {"type": "string"}}},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
    }}
    strict = strictify(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["free"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
