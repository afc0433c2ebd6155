"""A broken values file fails at render time with a message that names the key: the values
schema catches bad numbers and shapes, the templates' `fail`/`required` catch references."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chart_helpers import Render


def set_in(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = values
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


def remove_model(values: dict[str, Any]) -> None:
    """The service matrix names a model that the models list lacks."""
    models = values["global"]["pickspin"]["models"]
    used = values["global"]["pickspin"]["services"][0]["model"]
    models[:] = [m for m in models if m["name"] != used]


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "unknown model in a service": (
        lambda v: set_in(v, "global.pickspin.services.2.model", "gpt-9"),
        ("global.pickspin.services[2].model", "gpt-9")),
    "model missing from the models list": (
        remove_model, ("global.pickspin.services[0].model",)),
    "unknown backend in a service": (
        lambda v: set_in(v, "global.pickspin.services.1.backend", "sglang"),
        ("global.pickspin.services[1].backend", "sglang")),
    "negative concurrency": (
        lambda v: set_in(v, "global.pickspin.services.0.concurrency", -4),
        ("/global/pickspin/services/0/concurrency",)),
    "zero GPUs": (
        lambda v: set_in(v, "global.pickspin.services.3.gpus", 0),
        ("/global/pickspin/services/3/gpus",)),
    "unknown profile": (
        lambda v: set_in(v, "global.pickspin.defaultProfile", "turbo"),
        ("global.pickspin.defaultProfile", "turbo")),
    "utilisation above one": (
        lambda v: set_in(v, "global.pickspin.profiles.cost.scaling.targetUtilization", 1.5),
        ("/global/pickspin/profiles/cost/scaling/targetUtilization",)),
    "misspelled service key": (
        lambda v: v["global"]["pickspin"]["services"][0].update(concurency=8),
        ("/global/pickspin/services/0", "concurency")),
    "no Prometheus address": (
        lambda v: set_in(v, "global.prometheus.serverAddress", ""),
        ("/global/prometheus/serverAddress",)),
    "unknown recording rules kind": (
        lambda v: set_in(v, "keda.recordingRules.kind", "Operator"),
        ("/keda/recordingRules/kind",)),
    "zero scrape interval": (
        lambda v: set_in(v, "global.prometheus.scrapeInterval", 0),
        ("/global/prometheus/scrapeInterval",)),
    "unknown fallback behavior": (
        lambda v: v["keda"].setdefault("scaling", {}).update(fallbackBehavior="panic"),
        ("/keda/scaling/fallbackBehavior",)),
    "weights size without a unit the API accepts": (
        lambda v: v["keda"]["weights"].update(sizes={"deepseek-r1": "700 GB"}),
        ("/keda/weights/sizes/deepseek-r1",)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_values_fail_naming_the_key(render: Render, values: dict, helm: Any,
                                           case: str) -> None:
    breaks, expected = CASES[case]
    breaks(values)
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    message = str(caught.value)
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("chart", ["keda", "knative"])
@pytest.mark.parametrize("key, value, expected", [
    ("model", "gpt-9", r"global\.pickspin\.services\[0\]\.model: unknown model"),
    ("backend", "sglang", r"global\.pickspin\.services\[0\]\.backend: unknown backend"),
])
def test_subcharts_fail_alone_naming_the_key(helm: Any, chart_tree: Any, values: dict,
                                             chart: str, key: str, value: str,
                                             expected: str) -> None:
    """The subcharts check references themselves, so they fail when installed alone too."""
    values["global"]["pickspin"]["services"][0][key] = value
    with helm.Chart.load(chart_tree.parents[1] / chart) as loaded, \
            pytest.raises(helm.HelmError, match=expected):
        loaded.render({"global": values["global"]}, name="p", namespace="p")


def test_keda_alone_rejects_a_negative_concurrency(helm: Any, chart_tree: Any,
                                                   values: dict) -> None:
    values["global"]["pickspin"]["services"][4]["concurrency"] = -1
    with helm.Chart.load(chart_tree.parents[1] / "keda") as loaded, \
            pytest.raises(helm.HelmError, match=r"services\[4\]\.concurrency: must be"):
        loaded.render({"global": values["global"]}, name="p", namespace="p")
