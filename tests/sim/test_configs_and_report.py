"""Static baselines are sized by the queueing model; the report states what it measured."""

import json
import math

import numpy as np
import pytest

from pickspin.sim.command import report
from pickspin.sim.configs import configurations, erlang_c, replicas_for
from pickspin.sim.runs import CLUSTER
from pickspin.sim.summary import Figures, targets
from pickspin.sim.timing import ServiceTiming
from pickspin.sim.trace import TraceSpec, generate


def test_erlang_c_matches_the_closed_forms():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = ρ
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # M/M/2 at a = 1
    assert erlang_c(4, 4.0) == 1.0 and erlang_c(4, 0.0) == 0.0


def test_static_replicas_grow_with_the_peak_and_stop_at_the_budget(settings):
    svc = settings.service("llama-3-70b-vllm")
    timing = ServiceTiming.of(svc)
    per_replica = svc.concurrency / timing.mean_service_seconds(128)  # req/s at ρ = 1
    sizes = [replicas_for(rate, timing, 128, 0.99, svc.max_replicas)
             for rate in (0.1, 0.9 * per_replica, 2.5 * per_replica, 100 * per_replica)]
    assert sizes[0] == 1 and sizes == sorted(sizes)
    assert sizes[2] >= math.ceil(2.5) and sizes[-1] == svc.max_replicas


def test_baselines_deploy_only_what_their_routing_uses(settings, rows):
    trace = generate(TraceSpec("diurnal", 2000, 86_400, seed=1), sorted(rows))
    configs, sizing = configurations(settings, trace, rows, CLUSTER, 0.99)
    names = [c.name for c in configs]
    assert names[:4] == [f"pickspin/{p}" for p in settings.profiles]
    assert {"static-peak", "always-large", "random-assignment", "latency-only",
            "scaling-without-routing", "routing-without-scaling"} <= set(names)
    large = next(c for c in configs if c.name == "always-large")
    assert large.static and {settings.service(s).model for s in large.static} == {"deepseek-r1"}
    static = next(c for c in configs if c.name == "static-peak")
    assert static.static == sizing["static-peak"].replicas
    assert all(n >= 1 for n in static.static.values())
    assert set(static.static) == set(sizing["static-peak"].peak_rate)
    lean = next(c for c in configs if c.name == "static-lean")
    assert lean.static and set(lean.static) <= set(static.static)
    kept = sizing["static-lean"].requests
    full = sizing["static-peak"].requests
    assert all(full[n] >= 0.01 * len(trace) for n in lean.static)
    assert sum(kept.values()) == len(trace)  # the left-out services' requests went elsewhere


def _figures(name, cost, slo, accuracy):
    return Figures(name, "", 100, 0, accuracy, 1.0, cost * 100, cost, cost / 2, 0.1, 0.5, 3, 5,
                   slo, 0, 0, 0, 0, 0.5, 3600, 4, {})


def test_targets_compare_the_default_profile_with_the_baselines():
    by = {f.name: f for f in (_figures("pickspin/balanced", 0.010, 0.990, 0.70),
                              _figures("static-peak", 0.020, 0.992, 0.70),
                              _figures("random-assignment", 0, 0, 0.60),
                              _figures("always-large", 0, 0, 0.75))}
    checks = targets(by, "balanced")
    assert [c.met for c in checks] == [True, True, False]  # 50 % cheaper; +10 points; 93 %
    by["pickspin/balanced"] = _figures("pickspin/balanced", 0.010, 0.980, 0.70)
    assert not targets(by, "balanced")[0].met  # cheaper, but not at equal SLO attainment


def test_the_report_is_markdown_json_and_png(settings, rows, tmp_path, capsys):
    trace = generate(TraceSpec("steady", 300, 600, seed=2), sorted(rows))
    configs, sizing = configurations(settings, trace, rows, CLUSTER, 0.99, ["balanced"])
    figures = report(settings, configs, sizing, trace, rows, CLUSTER, {"shape": "steady"},
                     seed=1, jobs=2, slo_ttft=2.0, out=tmp_path)
    md = (tmp_path / "simulate.md").read_text()
    data = json.loads((tmp_path / "simulate.json").read_text())
    assert "## Targets (default profile)" in md and "Model assumptions" in md
    assert [c["name"] for c in data["configurations"]] == [c.name for c in configs]
    assert sum(f.requests for f in figures) == len(configs) * len(trace)
    assert all(c in data["timeline"] for c in ("pickspin/balanced", "static-peak"))
    assert (tmp_path / "replicas-over-time.png").stat().st_size > 1000
    assert (tmp_path / "cost-vs-accuracy.png").stat().st_size > 1000
    assert "simulated 8 configurations" in capsys.readouterr().out
    gpus = np.array(data["timeline"]["static-peak"]["gpus"])
    assert (gpus == gpus[0]).all()  # static: the same GPUs all along
