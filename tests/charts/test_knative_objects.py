"""The knative chart wires the functions as their func.yaml files describe: names, scale
annotations, health paths, the config file, and Triggers for exactly their subscriptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import REPO, VALUES, Render, of_kind, require_shared

from pickspin.core.settings import Settings

FUNCTIONS = ("gateway", "classifier", "selector", "telemetry", "responder")


class NoTimestampLoader(yaml.SafeLoader):
    """SafeLoader that leaves `created:`-style timestamps as strings (func.yaml schema)."""


NoTimestampLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def func_yaml(name: str) -> dict[str, Any]:
    path = REPO / "functions" / name / "func.yaml"
    return yaml.load(path.read_text(encoding="utf-8"), Loader=NoTimestampLoader)


def ksvcs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, "Service", "serving.knative.dev")}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_func_yaml_is_valid(function: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = require_shared("schemas", "func", "knative-func-v1.23.1_func_yaml-schema.json")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    doc = func_yaml(function)
    assert isinstance(doc["created"], str)
    validator = jsonschema.Draft4Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []


def test_triggers_match_func_yaml_subscriptions(render: Render) -> None:
    objects = render()
    services = ksvcs(objects)
    broker_names = {b["metadata"]["name"] for b in of_kind(objects, "Broker")}
    rendered = set()
    for trigger in of_kind(objects, "Trigger"):
        spec = trigger["spec"]
        ref = spec["subscriber"]["ref"]
        assert ref["kind"] == "Service" and ref["apiVersion"] == "serving.knative.dev/v1"
        assert ref["name"] in services, f"Trigger {trigger['metadata']['name']} → nothing"
        assert spec["broker"] in broker_names
        rendered.add((ref["name"], spec["broker"], tuple(sorted(spec["filter"]["attributes"]
                                                                .items()))))
    wanted = set()
    for function in FUNCTIONS:
        doc = func_yaml(function)
        for sub in doc.get("deploy", {}).get("subscriptions", []):
            wanted.add((doc["name"], sub["source"], tuple(sorted(sub["filters"].items()))))
    assert rendered == wanted


def _secret_ref(env: dict[str, Any]) -> str | None:
    """A chart env from a Secret, written as func.yaml writes it: `{{ secret:NAME:KEY }}`."""
    ref = env.get("valueFrom", {}).get("secretKeyRef")
    return f"{{{{ secret:{ref['name']}:{ref['key']} }}}}" if ref else None


@pytest.mark.parametrize("function", FUNCTIONS)
def test_knative_service_matches_func_yaml(render: Render, function: str) -> None:
    doc = func_yaml(function)
    svc = ksvcs(render())[doc["name"]]
    template = svc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    scale = doc["deploy"]["options"]["scale"]
    assert annotations["autoscaling.knative.dev/min-scale"] == str(scale["min"])
    assert annotations["autoscaling.knative.dev/max-scale"] == str(scale["max"])
    assert annotations["autoscaling.knative.dev/metric"] == scale["metric"]
    assert annotations["autoscaling.knative.dev/target"] == str(scale["target"])
    (container,) = template["spec"]["containers"]
    health = doc["deploy"]["healthEndpoints"]
    assert container["readinessProbe"]["httpGet"]["path"] == health["readiness"]
    assert container["livenessProbe"]["httpGet"]["path"] == health["liveness"]
    assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
    env = {e["name"]: e.get("value") or _secret_ref(e) for e in container["env"]}
    for wanted in doc["run"]["envs"]:
        assert env[wanted["name"]] == wanted["value"]
    concurrency = template["spec"]["containerConcurrency"]
    assert concurrency == 0 or concurrency >= scale["target"]


def test_functions_read_the_values_through_the_config_map(render: Render) -> None:
    objects = render()
    (config,) = [o for o in of_kind(objects, "ConfigMap") if "pickspin.yaml" in o["data"]]
    loaded = Settings.from_mapping(yaml.safe_load(config["data"]["pickspin.yaml"]), "configmap")
    assert loaded == Settings.load(VALUES)
    for svc in ksvcs(objects).values():
        pod = svc["spec"]["template"]["spec"]
        if svc["metadata"]["name"].endswith("dead-letters"):
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        (mount,) = container["volumeMounts"]
        assert volumes[mount["name"]]["configMap"]["name"] == config["metadata"]["name"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert Path(env["PICKSPIN_CONFIG"]) == Path(mount["mountPath"]) / "pickspin.yaml"


def test_the_profile_reaches_the_functions(render: Render, values: dict) -> None:
    for profile in Settings.load(VALUES).profiles:
        values["global"]["pickspin"]["defaultProfile"] = profile
        (config,) = [o for o in of_kind(render(values), "ConfigMap")
                     if "pickspin.yaml" in o["data"]]
        loaded = Settings.from_mapping(yaml.safe_load(config["data"]["pickspin.yaml"]))
        assert loaded.default_profile == profile
        assert loaded.profile().weights == Settings.load(VALUES).profile(profile).weights


def test_eventing_is_wired(render: Render) -> None:
    objects = render()
    services = ksvcs(objects)
    (broker,) = of_kind(objects, "Broker")
    delivery = broker["spec"]["delivery"]
    assert delivery["retry"] > 0 and delivery["backoffPolicy"] in {"linear", "exponential"}
    assert delivery["backoffDelay"].startswith("PT")
    assert delivery["deadLetterSink"]["ref"]["name"] in services
    broker_ref = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                  "name": broker["metadata"]["name"]}
    (ping,) = of_kind(objects, "PingSource")
    assert ping["spec"]["sink"]["ref"] == broker_ref
    telemetry = func_yaml("telemetry")
    assert {"source": broker["metadata"]["name"], "filters": {"type": "dev.knative.sources.ping"}} \
        in telemetry["deploy"]["subscriptions"], "the ping must reach telemetry through a Trigger"
    (binding,) = of_kind(objects, "SinkBinding")
    assert binding["spec"]["sink"]["ref"] == broker_ref
    subject = binding["spec"]["subject"]
    assert subject["kind"] == "Service" and subject["name"] == func_yaml("gateway")["name"]
    assert subject["name"] in services


def test_every_function_gets_the_internal_token_and_the_gateway_its_api_keys(render: Render,
                                                                             values: dict):
    objects = render()
    (secret,) = [s for s in of_kind(objects, "Secret")
                 if s["metadata"]["name"] == "pickspin-internal-token"]
    assert len(secret["data"]["token"]) >= 48  # random, base64
    for name, svc in ksvcs(objects).items():
        if name.endswith("dead-letters"):
            continue
        (container,) = svc["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        ref = env["PICKSPIN_INTERNAL_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "pickspin-internal-token", "key": "token"}
        assert "PICKSPIN_API_KEYS" not in env  # open unless a Secret is named
    values.setdefault("knative", {})["auth"] = {"apiKeysSecret": "my-keys"}
    gateway = ksvcs(render(values))["pickspin-gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PICKSPIN_API_KEYS"]["valueFrom"]["secretKeyRef"] == {"name": "my-keys",
                                                                     "key": "keys"}
