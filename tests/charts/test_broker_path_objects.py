"""The broker path in the chart: a Trigger with an exact `type` filter for every hop
(prompt.received → classifier → prompt.classified → selector → route.selected → responder →
inference.completed → telemetry), the responder's Knative Service, and a function's own
`delivery` rendered into its Triggers — all strictly valid against the upstream CRDs."""

from __future__ import annotations

from typing import Any

import pytest
from chart_helpers import Render, of_kind, require_shared, strip
from strict_openapi import CrdSchemas

HOPS = {"io.pickspin.prompt.received": "pickspin-classifier",
        "io.pickspin.prompt.classified": "pickspin-selector",
        "io.pickspin.route.selected": "pickspin-responder",
        "io.pickspin.inference.completed": "pickspin-telemetry"}


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return CrdSchemas.load(require_shared("schemas", "openapi"))


def triggers_by_type(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for trigger in of_kind(objects, "Trigger"):
        found.setdefault(trigger["spec"]["filter"]["attributes"]["type"], []).append(trigger)
    return found


def test_every_broker_hop_has_one_trigger_filtering_on_its_type(render: Render) -> None:
    objects = render()
    by_type = triggers_by_type(objects)
    for type_, subscriber in HOPS.items():
        [trigger] = by_type[type_]
        spec = trigger["spec"]
        assert spec["filter"]["attributes"] == {"type": type_}  # exact match, nothing else
        assert spec["subscriber"]["ref"] == {"apiVersion": "serving.knative.dev/v1",
                                             "kind": "Service", "name": subscriber}
        assert "delivery" not in spec  # the Broker's retries and dead-letter sink apply
    [broker] = of_kind(objects, "Broker")
    delivery = broker["spec"]["delivery"]
    assert delivery["retry"] >= 1 and delivery["deadLetterSink"]["ref"]["name"]


def test_the_responder_is_an_internal_knative_service(render: Render) -> None:
    [svc] = [o for o in of_kind(render(), "Service", "serving.knative.dev")
             if o["metadata"]["name"] == "pickspin-responder"]
    assert svc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    env = {e["name"] for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"PICKSPIN_CONFIG", "PICKSPIN_INTERNAL_TOKEN"} <= env


def test_a_functions_own_delivery_renders_into_its_triggers_and_validates(
        render: Render, values: dict, crds: CrdSchemas) -> None:
    own = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT2S",
           "deadLetterSink": {"uri": "http://answers-dead.example.svc/"}}
    values["knative"]["functions"] = {"responder": {"delivery": own}}
    objects = render(values)
    [trigger] = triggers_by_type(objects)["io.pickspin.route.selected"]
    assert trigger["spec"]["delivery"] == own
    assert "delivery" not in triggers_by_type(objects)["io.pickspin.prompt.received"][0]["spec"]
    assert all(crds.covers(strip(t)) for t in of_kind(objects, "Trigger"))
    problems = {t["metadata"]["name"]: crds.errors(strip(t))
                for t in of_kind(objects, "Trigger")}
    # the CRD keeps unknown fields in `delivery` (x-kubernetes-preserve-unknown-fields), so
    # what the check can catch there is a wrong type
    wrong = strip(trigger)
    wrong["spec"]["delivery"]["retry"] = "two"
    assert crds.errors(wrong)
    assert {k: v for k, v in problems.items() if v} == {}
