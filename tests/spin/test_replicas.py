"""Replica sources (a fake Kubernetes API object, the local scaler over HTTP) and the
probes they turn into: zero replicas is healthy but cold, unknown is unhealthy."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from kubernetes.client.exceptions import ApiException

from pickspin.adapters.probes import ReplicaProber
from pickspin.adapters.replicas import (
    KubeReplicas,
    LocalReplicas,
    Replicas,
    ReplicaSource,
    ReplicaSourceError,
    current_namespace,
    parse_local,
    probe_from,
)
from pickspin.core.settings import Settings
from pickspin.core.telemetry import Probe


def deployment(replicas: int | None, ready: int | None) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(replicas=replicas),
                           status=SimpleNamespace(ready_replicas=ready))


class FakeAppsV1:
    """`read_namespaced_deployment` over a table; a missing name is the API's 404."""

    def __init__(self, table: dict[str, object], error: ApiException | None = None) -> None:
        self.table = table
        self.error = error
        self.calls: list[tuple[str, str]] = []

    def read_namespaced_deployment(self, name: str, namespace: str) -> object:
        self.calls.append((name, namespace))
        if self.error is not None:
            raise self.error
        if name not in self.table:
            raise ApiException(status=404, reason="Not Found")
        return self.table[name]


def test_kube_replicas_reads_each_services_deployment(settings: Settings):
    api = FakeAppsV1({"gemma-3-27b-vllm": deployment(3, 2),
                      "gemma-3-27b-tgi": deployment(0, None)})  # K8s omits readyReplicas at 0
    counts = KubeReplicas(settings, api=api, namespace="ml").replicas()
    assert counts == {"gemma-3-27b-vllm": Replicas(3, 2), "gemma-3-27b-tgi": Replicas(0, 0)}
    assert api.calls == [(s.name, "ml") for s in settings.services]  # <model>-<backend>


def test_kube_api_errors_other_than_404_make_the_source_unavailable(settings: Settings):
    api = FakeAppsV1({}, error=ApiException(status=403, reason="Forbidden"))
    with pytest.raises(ReplicaSourceError, match="403 Forbidden"):
        KubeReplicas(settings, api=api, namespace="ml").replicas()


def test_namespace_from_env_then_service_account_file(tmp_path: Path):
    file = tmp_path / "namespace"
    assert current_namespace({"POD_NAMESPACE": "a"}, file) == "a"
    file.write_text("b\n")
    assert current_namespace({}, file) == "b"
    assert current_namespace({}, tmp_path / "absent") == "default"


def test_parse_local_is_strict():
    assert parse_local({"s": {"replicas": 2, "ready": 1}}) == {"s": Replicas(2, 1)}
    with pytest.raises(ReplicaSourceError, match="bad entry"):
        parse_local({"s": {"replicas": 2}})
    with pytest.raises(ReplicaSourceError):
        parse_local([1, 2])


def scaler(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_local_replicas_reads_the_scalers_endpoint():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"m-llamacpp": {"replicas": 0, "ready": 0}})

    source = LocalReplicas("http://scaler:9400/", http=scaler(handler))
    assert source.replicas() == {"m-llamacpp": Replicas(0, 0)}
    assert seen == ["http://scaler:9400/replicas"]


@pytest.mark.parametrize("answer", [httpx.Response(503), httpx.Response(200, text="not json")])
def test_local_replicas_unavailable_on_errors_and_bad_answers(answer):
    source = LocalReplicas("http://scaler:9400", http=scaler(lambda request: answer))
    with pytest.raises(ReplicaSourceError):
        source.replicas()


def test_local_replicas_unavailable_when_nothing_listens():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ReplicaSourceError, match="refused"):
        LocalReplicas("http://scaler:9400", http=scaler(refuse)).replicas()


def test_probe_from_counts():
    assert probe_from(Replicas(0, 0)) == Probe(healthy=True, replicas=0, ready_replicas=0)
    assert probe_from(Replicas(2, 1)) == Probe(healthy=True, replicas=2, ready_replicas=1)
    assert probe_from(None) == Probe(healthy=False)


class StaticSource(ReplicaSource):
    def __init__(self, counts: dict[str, Replicas] | None) -> None:
        self.counts = counts
        self.closed = False

    def replicas(self) -> dict[str, Replicas]:
        if self.counts is None:
            raise ReplicaSourceError("scaler down")
        return self.counts

    def close(self) -> None:
        self.closed = True


class HealthProbes:
    def __init__(self) -> None:
        self.closed = False

    def probe_all(self) -> dict[str, Probe]:
        return {"from-health": Probe(healthy=True)}

    def close(self) -> None:
        self.closed = True


def test_replica_prober_reports_every_service_from_the_source(settings: Settings):
    source = StaticSource({"gemma-3-27b-vllm": Replicas(0, 0)})
    probes = ReplicaProber(settings, source, HealthProbes()).probe_all()
    assert set(probes) == {s.name for s in settings.services}
    assert probes["gemma-3-27b-vllm"] == Probe(healthy=True, replicas=0, ready_replicas=0)
    assert probes["gemma-3-27b-tgi"].healthy is False  # no such deployment or process


def test_replica_prober_falls_back_to_health_probes_and_closes_both(settings: Settings):
    source, health = StaticSource(None), HealthProbes()
    prober = ReplicaProber(settings, source, health)
    assert prober.probe_all() == {"from-health": Probe(healthy=True)}
    prober.close()
    assert source.closed and health.closed
