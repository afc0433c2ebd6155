"""How many replicas each service has and how many are ready.

Two sources behind one interface: the Kubernetes API in a cluster (each service's
Deployment, named `<model>-<backend>` by the keda chart's `pickspin-keda.serviceName`) and
the local scaler's `GET <url>/replicas` on one machine. `probe_from` turns a count into
what the snapshot says: a service at zero replicas is healthy but cold.

>>> source = LocalReplicas("http://127.0.0.1:9400")                 # doctest: +SKIP
>>> source.replicas()["gemma-3-270m-llamacpp"]                      # doctest: +SKIP
Replicas(replicas=0, ready=0)
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pickspin.core.settings import Settings
from pickspin.core.telemetry import Probe

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ReplicaSourceError(RuntimeError):
    """The source could not be read this time (the caller falls back to health probes)."""


@dataclass(frozen=True)
class CrashReport:
    """How a service's last replica that died unasked ended (a pod's lastState.terminated)."""

    at: float  # wall-clock seconds when it was seen dead
    description: str  # e.g. "killed by SIGSEGV (fault in libggml-cpu.so)"
    pid: int | None = None


@dataclass(frozen=True)
class Replicas:
    replicas: int
    ready: int
    last_crash: CrashReport | None = None


class ReplicaSource(ABC):
    """Desired and ready replicas per service name; a service it does not know is absent."""

    @abstractmethod
    def replicas(self) -> dict[str, Replicas]:
        """Raise `ReplicaSourceError` when the source cannot be read."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the source holds."""

    def crash_since(self, service: str, since: float) -> CrashReport | None:
        """The crash of one of `service`'s replicas seen at or after `since` (wall clock),
        if the source knows of one; errors reading the source count as none."""
        try:
            count = self.replicas().get(service)
        except ReplicaSourceError:
            return None
        crash = count.last_crash if count else None
        return crash if crash is not None and crash.at >= since else None


def probe_from(count: Replicas | None) -> Probe:
    """A replica count → the health the snapshot reports (pure).

    Known to the source → healthy: at zero replicas it is cold (the selector adds its
    cold-start seconds), with replicas but none ready it is starting. Unknown (no such
    Deployment or local process) → unhealthy.
    """
    if count is None:
        return Probe(healthy=False)
    return Probe(healthy=True, replicas=count.replicas, ready_replicas=count.ready)


def parse_local(data: Any) -> dict[str, Replicas]:
    """The local scaler's `{"<service>": {"replicas": n, "ready": m, "last_crash": {…}}}`
    (pure, strict)."""
    if not isinstance(data, Mapping):
        raise ReplicaSourceError("replicas: expected a JSON object of services")
    out = {}
    for name, entry in data.items():
        try:
            crash = entry.get("last_crash")
            report = None if crash is None else CrashReport(
                float(crash["at"]), str(crash["description"]),
                None if crash.get("pid") is None else int(crash["pid"]))
            out[str(name)] = Replicas(int(entry["replicas"]), int(entry["ready"]), report)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ReplicaSourceError(f"replicas: bad entry for {name!r}: {entry!r}") from None
    return out


class LocalReplicas(ReplicaSource):
    """Reads the local scaler's `GET <url>/replicas`."""

    def __init__(self, url: str, http: httpx.Client | None = None, timeout: float = 1.0) -> None:
        self.url = url.rstrip("/") + "/replicas"
        self._http = http or httpx.Client(timeout=timeout)

    def replicas(self) -> dict[str, Replicas]:
        try:
            answer = self._http.get(self.url)
            answer.raise_for_status()
            return parse_local(answer.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise ReplicaSourceError(f"{self.url}: {exc}") from None

    def close(self) -> None:
        self._http.close()


class KubeReplicas(ReplicaSource):
    """`spec.replicas` and `status.readyReplicas` of each service's Deployment.

    `api` is a `kubernetes.client.AppsV1Api` (built from the in-cluster config if omitted).
    """

    def __init__(self, settings: Settings, api: Any = None, namespace: str | None = None) -> None:
        self.settings = settings
        self.namespace = namespace or current_namespace()
        self._api = api

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException as exc:
                raise ReplicaSourceError(f"kubernetes in-cluster config: {exc}") from None
            self._api = client.AppsV1Api()
        return self._api

    def replicas(self) -> dict[str, Replicas]:
        out = {}
        for svc in self.settings.services:
            deployment = self._read(svc.name)
            if deployment is not None:
                out[svc.name] = Replicas(int(deployment.spec.replicas or 0),
                                         int(deployment.status.ready_replicas or 0))
        return out

    def close(self) -> None:
        if self._api is not None:
            self._api.api_client.close()

    def _read(self, name: str) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ReplicaSourceError(f"deployment {name}: {exc.status} {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # cannot reach the API
            raise ReplicaSourceError(f"deployment {name}: {exc}") from None


def current_namespace(env: Mapping[str, str] | None = None,
                      namespace_file: Path = NAMESPACE_FILE) -> str:
    """POD_NAMESPACE, else the service account's namespace file, else `default`."""
    env = os.environ if env is None else env
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        return namespace_file.read_text().strip() or "default"
    except OSError:
        return "default"
