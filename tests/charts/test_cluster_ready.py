"""What a real cluster needs of the chart, point by point (issue 9): images that the
documented build pushes, metrics the Prometheus Operator scrapes, TensorRT-LLM metrics
switched on, weights downloaded once per model before install, backends that start at zero,
functions that roll on a config change, internal functions off the ingress, and the release
namespace on every object."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from chart_helpers import REPO, VALUES, Render, of_kind

from pickspin.core.policy import scaling_for
from pickspin.core.settings import Settings

SETTINGS = Settings.load(VALUES)
FUNCTIONS = ("gateway", "classifier", "selector", "telemetry", "responder")
INTERNAL = ("classifier", "selector", "telemetry", "responder")
GIB = {"Gi": 1, "Ti": 1024}


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects}


def ksvcs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return by_name(of_kind(objects, "Service", "serving.knative.dev"))


def function_services(objects: list[dict[str, Any]], values: dict) -> dict[str, dict]:
    """Function key → its Knative Service."""
    services = ksvcs(objects)
    names = {k: values["knative"].get("functions", {}).get(k, {}).get("name",
                                                                       f"pickspin-{k}")
             for k in FUNCTIONS}
    return {k: services[n] for k, n in names.items()}


def hook(obj: dict[str, Any]) -> tuple[set[str], int]:
    annotations = obj["metadata"].get("annotations", {})
    events = set(annotations.get("helm.sh/hook", "").split(",")) - {""}
    return events, int(annotations.get("helm.sh/hook-weight", "0"))


# ---- images ----------------------------------------------------------------------------
def test_function_images_are_what_kn_func_build_pushes(render: Render, values: dict) -> None:
    """`kn func build --registry R` pushes R/<func.yaml name>:latest; the chart runs that."""
    registry = values["knative"]["image"]["registry"]
    for key, svc in function_services(render(), values).items():
        (container,) = svc["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{registry}/pickspin-{key}:latest"


def test_an_image_tag_or_digest_can_be_pinned(render: Render, values: dict) -> None:
    values["knative"]["image"]["tag"] = "v7"
    digest = "ghcr.io/acme/pickspin-selector@sha256:" + "ab" * 32
    values["knative"].setdefault("functions", {})["selector"] = {"image": digest}
    images = {k: s["spec"]["template"]["spec"]["containers"][0]["image"]
              for k, s in function_services(render(values), values).items()}
    assert images["gateway"].endswith("/pickspin-gateway:v7")
    assert images["selector"] == digest


# ---- Prometheus ------------------------------------------------------------------------
def scrape_annotations(template: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in template["metadata"].get("annotations", {}).items()
            if k.startswith("prometheus.io/")}


def test_the_operator_gets_a_pod_monitor_per_backend_and_for_the_gateway(
        render: Render, values: dict) -> None:
    values["global"]["prometheus"]["monitorLabels"] = {"release": "kps"}
    objects = render(values)
    monitors = by_name(of_kind(objects, "PodMonitor"))
    deployments = by_name(of_kind(objects, "Deployment"))
    interval = f"{values['global']['prometheus']['scrapeInterval']}s"
    assert set(monitors) == {s.name for s in SETTINGS.services} | {"pickspin-gateway",
                                                                    "pickspin-responder"}
    for svc in SETTINGS.services:
        monitor, deployment = monitors[svc.name], deployments[svc.name]
        pod = deployment["spec"]["template"]
        # it selects exactly this Deployment's pods, on the port and path the engine serves
        assert monitor["spec"]["selector"]["matchLabels"] == \
            deployment["spec"]["selector"]["matchLabels"]
        assert all(pod["metadata"]["labels"][k] == v
                   for k, v in monitor["spec"]["selector"]["matchLabels"].items())
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        (server,) = pod["spec"]["containers"]
        assert endpoint["port"] in {p["name"] for p in server["ports"]}
        assert endpoint["path"] == SETTINGS.backend(svc.backend).metrics_path
        assert endpoint["interval"] == interval
        assert {"action": "replace", "targetLabel": "service", "replacement": svc.name} in \
            endpoint["relabelings"]
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert scrape_annotations(pod) == {}, "the Operator ignores them; none are rendered"
    gateway = monitors["pickspin-gateway"]
    assert gateway["spec"]["selector"]["matchLabels"] == \
        {"serving.knative.dev/service": "pickspin-gateway"}
    (endpoint,) = gateway["spec"]["podMetricsEndpoints"]
    # Knative names the user container's port `user-port`; the function listens on 8080
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == \
        ("user-port", "/metrics", interval)
    gateway_svc = function_services(objects, values)["gateway"]
    assert gateway_svc["spec"]["template"]["spec"]["containers"][0]["ports"][0][
        "containerPort"] == 8080
    assert scrape_annotations(gateway_svc["spec"]["template"]) == {}
    # the responder's metrics have their own port (its middleware takes every path of 8080)
    responder = monitors["pickspin-responder"]
    assert responder["spec"]["selector"]["matchLabels"] == \
        {"serving.knative.dev/service": "pickspin-responder"}
    (endpoint,) = responder["spec"]["podMetricsEndpoints"]
    responder_svc = function_services(objects, values)["responder"]
    env = {e["name"]: e.get("value") for e in
           responder_svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (endpoint["portNumber"], endpoint["path"], endpoint["interval"]) == \
        (int(env["PICKSPIN_METRICS_PORT"]), "/metrics", interval)


def test_without_the_operator_pods_carry_scrape_annotations(render: Render,
                                                            values: dict) -> None:
    values["global"]["prometheus"]["operator"] = False
    objects = render(values)
    assert not of_kind(objects, "PodMonitor")
    for svc in SETTINGS.services:
        backend = SETTINGS.backend(svc.backend)
        pod = by_name(of_kind(objects, "Deployment"))[svc.name]["spec"]["template"]
        assert scrape_annotations(pod) == {"prometheus.io/scrape": "true",
                                           "prometheus.io/port": str(backend.port),
                                           "prometheus.io/path": backend.metrics_path}
    gateway = function_services(objects, values)["gateway"]["spec"]["template"]
    assert scrape_annotations(gateway) == {"prometheus.io/scrape": "true",
                                           "prometheus.io/port": "8080",
                                           "prometheus.io/path": "/metrics"}
    responder = function_services(objects, values)["responder"]["spec"]["template"]
    assert scrape_annotations(responder) == {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": "9091",
                                             "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("interval", [10, 30, 60])
def test_rule_windows_and_scrapes_follow_the_one_interval(render: Render, values: dict,
                                                          interval: int) -> None:
    values["global"]["prometheus"]["scrapeInterval"] = interval
    objects = render(values)
    (rule,) = of_kind(objects, "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert {w for e in exprs for w in re.findall(r"\[([^\]]+)\]", e)} == {f"{4 * interval}s"}
    for monitor in of_kind(objects, "PodMonitor"):
        assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == f"{interval}s"
    # telemetry's own statistics use the same window
    telemetry = function_services(objects, values)["telemetry"]
    env = {e["name"]: e.get("value")
           for e in telemetry["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PICKSPIN_WINDOW_SECONDS"] == str(4 * interval)


# ---- TensorRT-LLM ----------------------------------------------------------------------
def test_trtllm_serves_its_metrics_through_the_mounted_options_file(render: Render) -> None:
    objects = render()
    deployments = by_name(of_kind(objects, "Deployment"))
    configmaps = by_name(of_kind(objects, "ConfigMap"))
    trtllm = [s for s in SETTINGS.services if s.backend == "trtllm"]
    assert trtllm
    for svc in trtllm:
        pod = deployments[svc.name]["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        args = server["args"]
        path = args[args.index("--extra_llm_api_options") + 1]
        mount = next(m for m in server["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        options = configmaps[volume["configMap"]["name"]]["data"][path.rsplit("/", 1)[1]]
        assert yaml.safe_load(options)["return_perf_metrics"] is True
        assert SETTINGS.backend(svc.backend).metrics_path == "/prometheus/metrics"
    others = [s for s in SETTINGS.services if s.backend != "trtllm"]
    for svc in others:
        server = deployments[svc.name]["spec"]["template"]["spec"]["containers"][0]
        assert "--extra_llm_api_options" not in server["args"]


# ---- weights ---------------------------------------------------------------------------
def size_gib(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Gi|Ti)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * GIB[unit]


def test_weights_one_volume_per_model_filled_once_before_install(render: Render,
                                                                 values: dict) -> None:
    objects = render()
    claims = by_name(of_kind(objects, "PersistentVolumeClaim"))
    jobs = of_kind(objects, "Job")
    deployments = by_name(of_kind(objects, "Deployment"))
    (secret_name,) = {e["valueFrom"]["secretKeyRef"]["name"] for j in jobs
                      for e in j["spec"]["template"]["spec"]["containers"][0]["env"]
                      if e["name"] == "HF_TOKEN"}
    models = {s.model for s in SETTINGS.services}
    assert set(claims) == {f"{m}-weights" for m in models}
    # every service of a model mounts that model's one volume, read-only
    for svc in SETTINGS.services:
        pod = deployments[svc.name]["spec"]["template"]["spec"]
        (weights,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert weights["persistentVolumeClaim"] == {"claimName": f"{svc.model}-weights",
                                                    "readOnly": True}
        assert "initContainers" not in pod, "no download on the cold-start path"
    serving_images = {b.image for b in SETTINGS.backends}
    by_claim = {}
    for job in jobs:
        spec = job["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        (volume,) = spec["volumes"]
        by_claim[volume["persistentVolumeClaim"]["claimName"]] = job
        # a small Python image, never a serving image (the llama.cpp one has no python)
        assert container["image"] not in serving_images
        assert container["image"].startswith("python:")
        env = {e["name"]: e.get("value") for e in container["env"]}
        model = SETTINGS.model(job["metadata"]["labels"]["pickspin.io/model"])
        assert env["MODEL_ID"] == model.hf_id
        patterns = json.loads(env["ALLOW_PATTERNS"])
        if model.file:
            assert patterns == [model.file]
        else:
            assert "*.safetensors" in patterns and not any(p == "*" for p in patterns)
            assert "original/*" in json.loads(env["IGNORE_PATTERNS"])
        assert "snapshot_download" in container["args"][0]
        assert "allow_patterns" in container["args"][0]
        events, weight = hook(job)
        assert events == {"pre-install", "pre-upgrade"}
        assert hook(claims[volume["persistentVolumeClaim"]["claimName"]])[1] < weight
    assert set(by_claim) == set(claims)
    for claim in claims.values():
        assert hook(claim)[0] == {"pre-install", "pre-upgrade"}
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    total = sum(size_gib(c["spec"]["resources"]["requests"]["storage"]) for c in claims.values())
    assert total < 1500, f"{total} GiB of ReadWriteMany by default is too much"
    # volumes filled another way: no Jobs, the same volumes
    values["keda"]["weights"]["download"] = False
    objects = render(values)
    assert not of_kind(objects, "Job")
    assert set(by_name(of_kind(objects, "PersistentVolumeClaim"))) == set(claims)
    # the token Secret, when the chart makes it, exists before the Jobs run
    values["keda"]["weights"]["download"] = True
    values["keda"]["huggingface"]["token"] = "hf_example"
    (secret,) = [s for s in of_kind(render(values), "Secret")
                 if s["metadata"]["name"] == secret_name]
    assert hook(secret)[0] == {"pre-install", "pre-upgrade"}
    assert hook(secret)[1] < min(hook(c)[1] for c in claims.values())


# ---- functions -------------------------------------------------------------------------
def checksums(objects: list[dict[str, Any]], values: dict) -> dict[str, str]:
    return {k: s["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for k, s in function_services(objects, values).items()}


def test_a_config_change_rolls_every_function(render: Render, values: dict) -> None:
    before = checksums(render(values), values)
    assert len(set(before.values())) == 1 and re.fullmatch(r"[0-9a-f]{64}",
                                                            before["gateway"])
    values["keda"]["scaling"]["pollingInterval"] = 5  # not the functions' configuration
    assert checksums(render(values), values) == before
    values["global"]["pickspin"]["defaultProfile"] = "quality"
    after = checksums(render(values), values)
    assert len(set(after.values())) == 1 and after["gateway"] != before["gateway"]


def test_internal_functions_are_cluster_local(render: Render, values: dict) -> None:
    services = function_services(render(), values)
    for key in INTERNAL:
        labels = services[key]["metadata"]["labels"]
        assert labels.get("networking.knative.dev/visibility") == "cluster-local", key
    assert "networking.knative.dev/visibility" not in services["gateway"]["metadata"]["labels"]


@pytest.mark.parametrize("deploy_functions", [True, False])
def test_every_object_is_in_the_release_namespace(helm: Any, chart_tree: Any, values: dict,
                                                  deploy_functions: bool) -> None:
    values["knative"]["deployFunctions"] = deploy_functions
    values["keda"]["huggingface"]["token"] = "hf_example"
    with helm.Chart.load(chart_tree) as chart:
        manifests = chart.render(values, name="rel", namespace="team-a")
    for template, text in manifests.items():
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert doc["metadata"].get("namespace") == "team-a", \
                    f"{doc['kind']}/{doc['metadata']['name']}"
        # nothing points at a namespace of its own (Prometheus' is the user's choice)
        assert not re.search(r"\.pickspin\.svc|namespace: pickspin\b", text), template
    binding = [d for d in yaml.safe_load_all(
        manifests["pickspin/charts/knative/templates/rolebinding.yaml"]) if d]
    assert all(s["namespace"] == "team-a" for b in binding for s in b["subjects"])


# ---- the numbers docs/deploy.md gives a newcomer ---------------------------------------
def test_deploy_doc_states_the_storage_and_gpus_the_defaults_need(render: Render) -> None:
    doc = " ".join((REPO / "docs" / "deploy.md").read_text(encoding="utf-8").split())
    claims = of_kind(render(), "PersistentVolumeClaim")
    for claim in claims:
        model = claim["metadata"]["name"].removesuffix("-weights")
        size = claim["spec"]["resources"]["requests"]["storage"].replace("Gi", " Gi")
        assert f"| {model} | {size} |" in doc
    total = sum(size_gib(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    assert f"**{total:,.0f} Gi**" in doc
    for profile in SETTINGS.profiles:
        idle = sum(scaling_for(SETTINGS, s.name, profile).min_replicas * s.gpus
                   for s in SETTINGS.services)
        assert f"{idle} (`{profile}`" in doc, profile
    busy = sum(s.max_replicas * s.gpus for s in SETTINGS.services)
    assert f"`maxReplicas`: {busy}." in doc
