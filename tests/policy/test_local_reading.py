"""The local scaler reads the keda chart's rendered ScaledObjects back: the policy numbers,
and what KEDA does when Prometheus gives no answer (ignoreNullValues, fallback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pickspin.core.policy import scaling_for
from pickspin.core.settings import Settings
from pickspin.core.warmpool import warm_pools
from pickspin.local.scaledobjects import Fallback, load, read

VALUES = Path(__file__).resolve().parents[2] / "charts" / "pickspin" / "values.yaml"
SETTINGS = Settings.load(VALUES)


def test_the_local_reading_is_the_rendered_policy_and_its_failure_mode() -> None:
    pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
    objects = load(SETTINGS, "http://127.0.0.1:9090", polling_interval=1)
    assert set(objects) == {s.name for s in SETTINGS.services}
    for name, so in objects.items():
        params = scaling_for(SETTINGS, name, activation_threshold=0.0, polling_interval=1)
        assert so.params == params
        # an empty answer is a failed poll, as in the cluster
        assert so.demand.ignore_null_values is False and so.pending.ignore_null_values is False
        assert so.fallback == Fallback(3, params.min_replicas, "currentReplicasIfHigher")


def test_keda_defaults_apply_when_the_object_does_not_say() -> None:
    obj = {"metadata": {"name": "m-vllm"},
           "spec": {"triggers": [
               {"name": "demand", "metadata": {"query": "q", "threshold": "2"}},
               {"name": "pending", "metadata": {"query": "p", "threshold": "2",
                                                "ignoreNullValues": "FALSE"}}]}}
    so = read(obj)
    assert so.demand.ignore_null_values is True  # KEDA's default
    assert so.pending.ignore_null_values is False  # read case-insensitively
    assert so.fallback is None


@pytest.mark.parametrize("profile", sorted(SETTINGS.profiles))
def test_the_local_scaler_keeps_warm_the_services_warm_pools_names(profile: str) -> None:
    """One rule: the chart's minReplicaCount, which the local scaler applies, is
    `warmpool.warm_pools` (a tier's pool on its designated service) under every profile."""
    pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
    settings = SETTINGS.model_copy(update={"default_profile": profile})
    objects = load(settings, "http://127.0.0.1:9090", polling_interval=1)
    assert {n: so.params.min_replicas for n, so in objects.items()} == \
        warm_pools(settings, profile)
