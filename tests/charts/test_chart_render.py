"""The umbrella chart renders through the Helm library, lints clean, and every object it
renders validates: KEDA and Knative objects strictly against the upstream CRD schemas, core
objects against the Kubernetes schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import REPO, VALUES, Render, of_kind, require_shared, strip
from strict_openapi import CrdSchemas

from pickspin.core.settings import Settings

PROFILES = sorted(Settings.load(VALUES).profiles)
CORE_KINDS = {("apps/v1", "Deployment"), ("batch/v1", "Job"), ("v1", "Service"),
              ("v1", "PersistentVolumeClaim"),
              ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"),
              ("rbac.authorization.k8s.io/v1", "Role"),
              ("rbac.authorization.k8s.io/v1", "RoleBinding")}
# No PingSource, PrometheusRule or PodMonitor schema ships in ../shared; these are the fields
# their upstream references document (knative docs "PingSource reference", sources.knative.dev/v1;
# prometheus-operator API reference, monitoring.coreos.com/v1: PrometheusRule
# spec.groups[].rules[], PodMonitorSpec, PodMetricsEndpoint, RelabelConfig).
PING_SPEC_FIELDS = {"schedule", "timezone", "contentType", "data", "dataBase64", "sink",
                    "ceOverrides"}
RULE_GROUP_FIELDS = {"name", "interval", "rules", "limit", "partial_response_strategy"}
RULE_FIELDS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
POD_MONITOR_FIELDS = {"jobLabel", "podTargetLabels", "podMetricsEndpoints", "selector",
                      "namespaceSelector", "sampleLimit", "targetLimit", "labelLimit",
                      "labelNameLengthLimit", "labelValueLengthLimit", "keepDroppedTargets",
                      "attachMetadata", "scrapeClass", "scrapeProtocols", "bodySizeLimit"}
POD_ENDPOINT_FIELDS = {"port", "portNumber", "targetPort", "path", "scheme", "params",
                       "interval", "scrapeTimeout", "honorLabels", "honorTimestamps",
                       "trackTimestampsStaleness", "metricRelabelings", "relabelings",
                       "filterRunning", "authorization", "basicAuth", "oauth2",
                       "bearerTokenSecret", "tlsConfig", "proxyUrl", "followRedirects",
                       "enableHttp2"}
RELABEL_FIELDS = {"sourceLabels", "separator", "targetLabel", "regex", "modulus",
                  "replacement", "action"}
RELABEL_ACTIONS = {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                   "lowercase", "uppercase", "keepequal", "dropequal"}
SELECTOR_FIELDS = {"matchLabels", "matchExpressions"}
DURATION = re.compile(r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return CrdSchemas.load(require_shared("schemas", "openapi"))


@pytest.fixture(scope="module")
def kube_validate() -> Any:
    return pytest.importorskip("kubernetes_validate",
                               reason="kubernetes-validate is not installed")


def with_profile(values: dict[str, Any], profile: str) -> dict[str, Any]:
    values["global"]["pickspin"]["defaultProfile"] = profile
    return values


def validation_errors(obj: dict[str, Any], crds: CrdSchemas, kube: Any) -> list[str]:
    """What is wrong with one rendered object; every kind must be covered by a check."""
    body = strip(obj)
    if crds.covers(body):
        return crds.errors(body)
    if (body["apiVersion"], body["kind"]) in CORE_KINDS:
        try:
            kube.validate(body, kube.latest_version(), strict=True)
        except kube.ValidationError as exc:
            return [str(exc)]
        return []
    if body["kind"] == "PingSource":
        assert body["apiVersion"] == "sources.knative.dev/v1"
        return [f"spec.{k}: unknown field" for k in set(body["spec"]) - PING_SPEC_FIELDS]
    if body["kind"] == "PodMonitor":
        assert body["apiVersion"] == "monitoring.coreos.com/v1"
        return pod_monitor_problems(body["spec"])
    if body["kind"] == "PrometheusRule":
        problems = []
        for group in body["spec"]["groups"]:
            problems += [f"group field {k}" for k in set(group) - RULE_GROUP_FIELDS]
            for rule in group["rules"]:
                problems += [f"rule field {k}" for k in set(rule) - RULE_FIELDS]
        return problems
    return [f"no schema check for {body['apiVersion']} {body['kind']}"]


def pod_monitor_problems(spec: dict[str, Any]) -> list[str]:
    problems = [f"spec.{k}: unknown field" for k in set(spec) - POD_MONITOR_FIELDS]
    problems += [f"selector.{k}: unknown field" for k in set(spec["selector"]) - SELECTOR_FIELDS]
    if not spec.get("podMetricsEndpoints"):
        problems.append("spec.podMetricsEndpoints: empty")
    for endpoint in spec.get("podMetricsEndpoints", []):
        problems += [f"endpoint.{k}: unknown field" for k in set(endpoint) - POD_ENDPOINT_FIELDS]
        if "interval" in endpoint and not DURATION.match(endpoint["interval"]):
            problems.append(f"endpoint.interval: not a duration: {endpoint['interval']}")
        for relabel in endpoint.get("relabelings", []):
            problems += [f"relabeling.{k}: unknown field" for k in set(relabel) - RELABEL_FIELDS]
            if relabel.get("action", "replace") not in RELABEL_ACTIONS:
                problems.append(f"relabeling.action: {relabel['action']}")
    return problems


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_lint_reports_no_errors(helm: Any, chart_tree: Path, values: dict,
                                profile: str | None) -> None:
    report = helm.lint(chart_tree, with_profile(values, profile) if profile else None,
                       with_subcharts=True, namespace="pickspin", strict=False)
    errors = [m for m in report["messages"] if m["severity"] >= 3]
    assert report["errors"] == [] and errors == [], report


def test_lint_does_report_errors(helm: Any, chart_tree: Path, values: dict) -> None:
    """The lint check above is live: a value the schema rejects is a lint error."""
    values["global"]["pickspin"]["services"][0]["concurrency"] = -1
    report = helm.lint(chart_tree, values, with_subcharts=True, namespace="pickspin")
    assert any("/global/pickspin/services/0/concurrency" in e for e in report["errors"])


@pytest.mark.parametrize("chart", ["knative", "keda"])
def test_each_subchart_lints_alone(helm: Any, chart_tree: Path, chart: str,
                                   default_values: dict) -> None:
    report = helm.lint(chart_tree.parents[1] / chart, {"global": default_values["global"]},
                       namespace="pickspin")
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 3] == []


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_every_rendered_object_validates(render: Render, values: dict, crds: CrdSchemas,
                                         kube_validate: Any, profile: str | None) -> None:
    objects = render(with_profile(values, profile) if profile else None)
    assert objects
    kinds = {o["kind"] for o in objects}
    assert {"ScaledObject", "Deployment", "PersistentVolumeClaim", "Broker", "Trigger",
            "PingSource", "SinkBinding", "ConfigMap"} <= kinds
    problems = {f"{o['kind']}/{o['metadata']['name']}": validation_errors(o, crds, kube_validate)
                for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("operator", [True, False])
def test_optional_objects_validate(render: Render, values: dict, crds: CrdSchemas,
                                   kube_validate: Any, operator: bool) -> None:
    """The token Secret, the PrometheusRule, an external dead-letter URI, and the plain
    Prometheus form (annotations, rules ConfigMap) as well as the Operator's."""
    values["keda"]["huggingface"]["token"] = "hf_example"
    values["keda"]["recordingRules"]["kind"] = "PrometheusRule"
    values["knative"]["broker"]["deadLetterSink"]["uri"] = "http://sink.example.svc/"
    values["global"]["prometheus"]["operator"] = operator
    values["global"]["prometheus"]["monitorLabels"] = {"release": "kube-prometheus-stack"}
    objects = render(values)
    assert of_kind(objects, "Secret") and of_kind(objects, "PrometheusRule")
    assert bool(of_kind(objects, "PodMonitor")) is operator
    assert not [o for o in of_kind(objects, "Service", "serving")
                if o["metadata"]["name"].endswith("dead-letters")]
    problems = {f"{o['kind']}/{o['metadata']['name']}": validation_errors(o, crds, kube_validate)
                for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}


def test_recording_rules_ship_the_one_rules_file(render: Render, values: dict) -> None:
    """With the Operator (the default) the rules are a PrometheusRule, without it a ConfigMap
    rule file; both are the one template keda/files/recording-rules.yaml rendered alike."""
    objects = render()
    (rule,) = of_kind(objects, "PrometheusRule")
    assert not [o for o in of_kind(objects, "ConfigMap")
                if o["metadata"]["name"].endswith("recording-rules")]
    assert "{{" in (REPO / "keda" / "files" / "recording-rules.yaml").read_text()
    values["global"]["prometheus"]["operator"] = False
    objects = render(values)
    assert not of_kind(objects, "PrometheusRule")
    (configmap,) = [o for o in of_kind(objects, "ConfigMap")
                    if o["metadata"]["name"].endswith("recording-rules")]
    (text,) = configmap["data"].values()
    assert yaml.safe_load(text) == rule["spec"]
    values["keda"]["recordingRules"]["kind"] = "PrometheusRule"
    (forced,) = of_kind(render(values), "PrometheusRule")
    assert forced["spec"] == rule["spec"]


def test_conditions_switch_the_subcharts(render: Render, values: dict) -> None:
    values["knative"]["enabled"] = False
    kinds = {o["kind"] for o in render(values)}
    assert "Broker" not in kinds and "ScaledObject" in kinds
    values["knative"]["enabled"] = True
    values["keda"]["enabled"] = False
    kinds = {o["kind"] for o in render(values)}
    assert "ScaledObject" not in kinds and "Deployment" not in kinds and "Broker" in kinds


@pytest.mark.parametrize("deploy_functions, command", [
    (True, "kn func build --builder=host"), (False, "kn func deploy --builder=host")])
def test_notes_name_the_next_commands(helm: Any, chart_tree: Path, values: dict,
                                      deploy_functions: bool, command: str) -> None:
    values["knative"]["deployFunctions"] = deploy_functions
    with helm.Chart.load(chart_tree) as chart:
        notes = chart.render(values, name="pickspin", namespace="pickspin")[
            "pickspin/templates/NOTES.txt"]
    assert command in notes
    assert "get scaledobjects" in notes and "/v1/chat/completions" in notes


def test_kn_func_deploy_mode_leaves_services_and_triggers_to_func(
        render: Render, values: dict, crds: CrdSchemas, kube_validate: Any) -> None:
    values["knative"]["deployFunctions"] = False
    objects = render(values)
    assert not of_kind(objects, "Trigger")
    names = {o["metadata"]["name"] for o in of_kind(objects, "Service", "serving.knative.dev")}
    assert names == {"pickspin-dead-letters"}
    kinds = {o["kind"] for o in objects}
    assert {"Broker", "PingSource", "SinkBinding", "ConfigMap"} <= kinds
    problems = {f"{o['kind']}/{o['metadata']['name']}": validation_errors(o, crds, kube_validate)
                for o in objects}
    assert {k: v for k, v in problems.items() if v} == {}
