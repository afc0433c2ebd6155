"""What the keda chart renders agrees with the settings and with pickspin.core.policy: one
ScaledObject per service whose numbers are `scaling_for`, and backend Deployments whose
servers listen where the service matrix says, with the GPUs and probes it implies."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from chart_helpers import REPO, VALUES, Render, of_kind

from pickspin.core.policy import Cron, scaling_for
from pickspin.core.settings import TIERS, Settings
from pickspin.core.warmpool import warm_order, warm_pools

SETTINGS = Settings.load(VALUES)
KEDA_DEFAULTS = yaml.safe_load((REPO / "keda" / "values.yaml").read_text(encoding="utf-8"))
PROFILES = sorted(SETTINGS.profiles)


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects}


def test_the_served_profile_schedules_cron_triggers(render: Render, values: dict) -> None:
    scaled = by_name(of_kind(render(values), "ScaledObject"))
    crons = {name: [t for t in o["spec"]["triggers"] if t["type"] == "cron"]
             for name, o in scaled.items()}
    expected = {name for name in scaled if scaling_for(SETTINGS, name).schedules}
    assert expected  # the default profile has a schedule (values.yaml)
    assert {name for name, c in crons.items() if c} == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_scaled_objects_carry_the_policy_numbers(render: Render, values: dict,
                                                 profile: str) -> None:
    values["global"]["pickspin"]["defaultProfile"] = profile
    keda = values["keda"]
    scaled = by_name(of_kind(render(values), "ScaledObject"))
    assert sorted(scaled) == sorted(s.name for s in SETTINGS.services)
    for name, obj in scaled.items():
        spec = obj["spec"]
        params = scaling_for(SETTINGS, name, profile,
                             activation_threshold=float(keda.get("scaling", {}).get(
                                 "activationThreshold", 0)),
                             polling_interval=keda["scaling"]["pollingInterval"])
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": name}
        assert spec["minReplicaCount"] == params.min_replicas
        assert spec["maxReplicaCount"] == params.max_replicas
        assert spec["cooldownPeriod"] == params.cooldown_seconds
        assert spec["pollingInterval"] == params.polling_interval
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == \
            params.stabilization_seconds
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        triggers = {t["name"]: t for t in spec["triggers"]}
        demand, pending = triggers["demand"], triggers["pending"]
        assert demand["type"] == pending["type"] == "prometheus"
        assert float(demand["metadata"]["threshold"]) == params.threshold
        assert float(pending["metadata"]["threshold"]) == params.pending_threshold
        assert float(demand["metadata"]["activationThreshold"]) == params.activation_threshold
        assert float(pending["metadata"]["activationThreshold"]) == \
            params.pending_activation_threshold
        assert demand["metadata"]["query"] == (
            f'sum(pickspin:service_demand:rate{{model="{params.model}",'
            f'backend="{params.backend}"}})')
        assert pending["metadata"]["query"] == (
            f'sum(pickspin_pending_requests{{service="{name}"}})'
            f' + sum(pickspin_inflight_requests{{service="{name}"}})')
        for trig in (demand, pending):
            assert trig["metadata"]["serverAddress"] == \
                values["global"]["prometheus"]["serverAddress"]
            # an empty answer is an error (the gateway exports every series from its
            # start), and fallback is only valid on AverageValue triggers
            assert trig["metadata"]["ignoreNullValues"] == "false"
            assert trig["metricType"] == "AverageValue"
        # the profile's scheduled warm pools: one daily cron trigger per window that keeps
        # this service warm
        crons = [t for t in spec["triggers"] if t["type"] == "cron"]
        assert len(spec["triggers"]) == 2 + len(crons)
        assert tuple(Cron.from_metadata(t["metadata"]) for t in crons) == params.schedules
        assert all(t["metadata"]["timezone"] == params.timezone for t in crons)
        fallback = spec["fallback"]
        wanted = {**KEDA_DEFAULTS["scaling"], **keda["scaling"]}
        assert fallback["failureThreshold"] == wanted["fallbackFailureThreshold"] >= 1
        assert params.min_replicas <= fallback["replicas"] <= params.max_replicas
        assert fallback["replicas"] == min(max(wanted["fallbackReplicas"], params.min_replicas),
                                           params.max_replicas)
        assert fallback["behavior"] == wanted["fallbackBehavior"] == "currentReplicasIfHigher"


def test_the_profile_sets_warm_pools_and_cooldowns(render: Render, values: dict) -> None:
    """Switching the profile changes minReplicaCount and cooldownPeriod as its scaling says."""
    seen = {}
    for profile in PROFILES:
        values["global"]["pickspin"]["defaultProfile"] = profile
        scaled = by_name(of_kind(render(values), "ScaledObject"))
        scaling = SETTINGS.profile(profile).scaling
        for svc in SETTINGS.services:
            assert scaled[svc.name]["spec"]["cooldownPeriod"] == scaling.cooldown_seconds
        for tier in TIERS:  # warmPool[tier] replicas across the tier, on its first services
            wanted = scaling.warm_pool.get(tier, 0)  # type: ignore[call-overload]
            order = warm_order(SETTINGS, tier)
            mins = [scaled[s.name]["spec"]["minReplicaCount"] for s in order]
            assert sum(mins) == min(wanted, sum(s.max_replicas for s in order))
            filling = [m for m in mins if m]
            assert mins[:len(filling)] == filling  # a prefix of the order, nothing after
        seen[profile] = tuple(o["spec"]["minReplicaCount"] for o in scaled.values())
    assert len(set(seen.values())) > 1, "profiles should differ in their warm pools"


@pytest.mark.parametrize("scope", ["tier", "service"])
def test_the_chart_keeps_the_warm_pools_warm_pools_says(render: Render, values: dict,
                                                         scope: str) -> None:
    """The chart's sort and fill is warmpool's, on a matrix where the order turns on every
    part of the key (ability, quality, prior latency, name) and a pool overflows a budget."""
    ps = values["global"]["pickspin"]
    for model in ps["models"]:
        if model["name"] == "qwen-3-235b":
            model["abilityOffset"] = 0.0  # ties deepseek-r1: mean quality decides
    for svc in ps["services"]:
        if svc["model"] == "deepseek-r1":
            svc["maxReplicas"] = 1
        if svc["model"] == "llama-3-70b":
            svc["priors"]["latencySeconds"] = 4.0  # three backends tie: the name decides
    ps["profiles"]["balanced"]["scaling"].update(
        warmPool={"small": 5, "medium": 2, "large": 4}, warmPoolScope=scope)
    settings = Settings.from_mapping(values)
    expected = warm_pools(settings, "balanced")
    scaled = by_name(of_kind(render(values), "ScaledObject"))
    assert {n: o["spec"]["minReplicaCount"] for n, o in scaled.items()} == expected
    if scope == "tier":
        assert sum(expected.values()) == 5 + 2 + 4
        assert expected["llama-3-70b-tgi"] == 2  # 'tgi' sorts first among equal priors
        # deepseek-r1's three budgets of 1 first (better mean quality), then the overflow
        assert [expected[f"{m}-{b}"] for m in ("deepseek-r1", "qwen-3-235b")
                for b in ("trtllm", "vllm", "tgi")] == [1, 1, 1, 1, 0, 0]
    else:
        assert all(expected[s.name] == min(s.max_replicas, 5 if s.model.startswith("gemma")
                                           else 2 if s.model == "llama-3-70b" else 4)
                   for s in settings.services)


def test_backend_servers_match_the_service_matrix(render: Render) -> None:
    objects = render()
    deployments = by_name(of_kind(objects, "Deployment"))
    services = by_name(of_kind(objects, "Service", "v1"))
    claims = by_name(of_kind(objects, "PersistentVolumeClaim"))
    for svc in SETTINGS.services:
        backend, model = SETTINGS.backend(svc.backend), SETTINGS.model(svc.model)
        pod = deployments[svc.name]["spec"]["template"]["spec"]
        (server,) = pod["containers"]
        args = [str(a) for a in server.get("command", []) + server["args"]]
        # where the service matrix says the endpoint is
        url = urlparse(svc.endpoint)
        assert url.hostname == svc.name and services[svc.name]["spec"]["ports"][0]["port"] \
            == url.port == backend.port
        assert server["ports"][0]["containerPort"] == backend.port
        assert server["image"] == backend.image
        # the engine's own flags for port, tensor parallelism and batch size
        flags = {
            "vllm": ("--port", "--tensor-parallel-size", "--max-num-seqs"),
            "tgi": ("--port", "--num-shard", "--max-concurrent-requests"),
            "trtllm": ("--port", "--tp_size", "--max_batch_size"),
            "llamacpp": ("--port", None, "--parallel"),  # one process uses every GPU given
        }[backend.kind.value]
        for flag, want in zip(flags, (backend.port, svc.gpus, svc.concurrency), strict=True):
            if flag is not None:
                assert args[args.index(flag) + 1] == str(want), (svc.name, flag)
        entry = {"vllm": ["vllm", "serve"], "trtllm": ["trtllm-serve"], "tgi": [],
                 "llamacpp": []}
        assert server.get("command", []) == entry[backend.kind.value]
        # GPUs, health probes on the engine's health path
        assert server["resources"]["limits"]["nvidia.com/gpu"] == svc.gpus
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert server[probe]["httpGet"]["path"] == backend.health_path
        startup = server["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= svc.cold_start_seconds
        # weights: the model's volume, read-only, filled before install (no init step)
        assert "initContainers" not in pod
        volumes = {v["name"]: v for v in pod["volumes"]}
        claim = volumes["weights"]["persistentVolumeClaim"]
        assert claim == {"claimName": f"{model.name}-weights", "readOnly": True}
        assert claim["claimName"] in claims
        mount = next(m for m in server["volumeMounts"] if m["name"] == "weights")
        assert mount["readOnly"] is True
        assert any(a.startswith(f"{mount['mountPath']}/{model.hf_id}") for a in args)
        # KEDA takes over from zero
        assert deployments[svc.name]["spec"]["replicas"] == 0


def test_threshold_is_target_concurrency_per_replica(render: Render) -> None:
    scaled = by_name(of_kind(render(), "ScaledObject"))
    utilization = SETTINGS.profile().scaling.target_utilization
    for svc in SETTINGS.services:
        threshold = float(scaled[svc.name]["spec"]["triggers"][0]["metadata"]["threshold"])
        assert math.isclose(threshold, svc.concurrency * utilization, abs_tol=1e-3)
