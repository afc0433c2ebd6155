"""A local Prometheus (Debian's `prometheus` 2.x) for `pickspin up`.

It loads the chart's own recording rules (`keda/files/recording-rules.yaml`, not a copy),
rendered by the keda chart for its scrape interval exactly as a cluster gets them (every rate
window is 4 × the scrape interval), and scrapes whatever `targets/*.json` in its folder lists
(file-based service discovery, re-read every second), so the scaler and `up` add or remove
targets without restarting it.

>>> folder = state_dir / "prometheus"                                    # doctest: +SKIP
>>> write_config(folder)                                                 # doctest: +SKIP
>>> gateway = Target("127.0.0.1:8080", labels={"job": "gateway"})
>>> write_targets(folder, "functions", [gateway])                        # doctest: +SKIP
>>> proc = start_prometheus(folder, free_port(), state_dir / "logs")     # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pickspin.local.processes import Proc, atomic_write, spawn

REPO = Path(__file__).resolve().parents[3]
KEDA_CHART = REPO / "keda"
RULES = KEDA_CHART / "files" / "recording-rules.yaml"  # a template: windows from the interval
VALUES = REPO / "charts" / "pickspin" / "values.yaml"
CONFIG_FILE = "prometheus.yml"
RULES_FILE = "recording-rules.yaml"
TARGETS_DIR = "targets"
DATA_DIR = "data"
HEALTH_PATH = "/-/ready"
JOB = "pickspin"
INSTALL_HINT = "install Debian's prometheus: apt-get install prometheus (make setup does it)"


class PrometheusMissing(RuntimeError):
    """The `prometheus` binary is not on PATH."""


@dataclass(frozen=True)
class Target:
    """One scrape target: `host:port`, the path of its metrics and the labels it gets.

    Labels carry `job` and, for backends, `service`; the trtllm kind serves its metrics at
    `/prometheus/metrics`.
    """

    address: str
    metrics_path: str = "/metrics"
    labels: Mapping[str, str] = field(default_factory=dict)


def duration(seconds: float) -> str:
    """Seconds → a Prometheus duration (`1s`, `500ms`)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def recording_rules(scrape_interval: float, *, chart: Path = KEDA_CHART,
                    values: Path = VALUES) -> str:
    """The keda chart's recording rules for `scrape_interval` (seconds, rounded up to whole
    seconds as the chart takes them), rendered by the chart itself as it ships them in its
    rules ConfigMap; `values` only supplies a valid service matrix to render with."""
    import helm_python

    glob = dict(yaml.safe_load(values.read_text(encoding="utf-8"))["global"])
    glob["prometheus"] = {**glob.get("prometheus", {}),
                          "scrapeInterval": max(1, math.ceil(scrape_interval))}
    with helm_python.Chart.load(str(chart)) as loaded:
        manifests = loaded.render({"global": glob, "recordingRules": {"kind": "ConfigMap"}},
                                  name="pickspin", namespace="pickspin")
    for text in manifests.values():
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and \
                    doc["metadata"]["name"].endswith("recording-rules"):
                (rules,) = doc["data"].values()
                return str(rules)
    raise LookupError(f"{chart}: renders no recording-rules ConfigMap")


def config(folder: Path, *, scrape_interval: float = 1.0) -> dict[str, object]:
    """The Prometheus configuration as a mapping (pure); rules: `folder/recording-rules.yaml`."""
    interval = duration(scrape_interval)
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(folder.resolve() / RULES_FILE)],
        "scrape_configs": [{
            "job_name": JOB,
            "file_sd_configs": [{
                "files": [str(folder.resolve() / TARGETS_DIR / "*.json")],
                "refresh_interval": "1s",
            }],
        }],
    }


def write_config(folder: Path, *, scrape_interval: float = 1.0) -> Path:
    """Write `folder/prometheus.yml` and the rules it loads for this scrape interval (and
    create `targets/`); return the configuration's path."""
    (folder / TARGETS_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write(folder / RULES_FILE, recording_rules(scrape_interval))
    path = folder / CONFIG_FILE
    text = yaml.safe_dump(config(folder, scrape_interval=scrape_interval), sort_keys=False)
    atomic_write(path, text)
    return path


def target_groups(targets: Iterable[Target]) -> list[dict[str, object]]:
    """file_sd JSON: one group per target, its metrics path as `__metrics_path__` (pure)."""
    return [{"targets": [t.address],
             "labels": {**t.labels, "__metrics_path__": t.metrics_path}} for t in targets]


def write_targets(folder: Path, name: str, targets: list[Target]) -> Path:
    """Replace `folder/targets/<name>.json` atomically (Prometheus never reads half a file)."""
    path = folder / TARGETS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(target_groups(targets), indent=2) + "\n")
    return path


def prometheus_command(folder: Path, port: int, binary: str = "prometheus") -> list[str]:
    return [
        binary,
        f"--config.file={(folder / CONFIG_FILE).resolve()}",
        f"--storage.tsdb.path={(folder / DATA_DIR).resolve()}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]


def find_binary(which: Callable[[str], str | None] = shutil.which) -> str:
    """Path of `prometheus`, or `PrometheusMissing` saying how to install it."""
    found = which("prometheus")
    if not found:
        raise PrometheusMissing(INSTALL_HINT)
    return found


def start_prometheus(folder: Path, port: int, log_dir: Path, *,
                     which: Callable[[str], str | None] = shutil.which) -> Proc:
    """Start Prometheus on 127.0.0.1:`port` with `folder`'s config (write_config first).

    Data goes to `folder/data`; `Proc.health` is `/-/ready`; `processes.stop` ends it.
    """
    if not (folder / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{folder / CONFIG_FILE}: call write_config first")
    (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
    argv = prometheus_command(folder, port, find_binary(which))
    return spawn("prometheus", "prometheus", argv, env={}, cwd=folder, log_dir=log_dir,
                 port=port, health=HEALTH_PATH)
