"""One policy, two executors: `promtool test rules` feeds synthetic gateway series to the
recording rules and to the ScaledObjects' own queries, and checks that what KEDA and its HPA
would compute from them (ceil(value / threshold), activation, min/max, cooldown,
scale-down stabilisation, written as PromQL) equals what `pickspin.core.policy.decide` gives when
it drives the same scenario poll by poll, as the local scaler does.

The promtool test file is generated here, so every expected number comes from Python. The
rules are the keda chart's, rendered for the chart's default scrape interval: samples arrive
once per scrape, and every rate window is the one the chart derives (4 × the interval).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pickspin.core.policy import Decision, Observation, Reason, ScalingParams, decide, scaling_for
from pickspin.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "charts" / "pickspin" / "values.yaml"
DEFAULTS = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
# seconds between samples (one per scrape), rule evaluations and polls in the scenario
STEP = int(DEFAULTS["global"]["prometheus"]["scrapeInterval"])
RATE_WINDOW = 4 * STEP  # what the chart derives; checked against the rendered rules below
LATENCY = 4.0  # mean request latency W in seconds throughout the scenario
SETTINGS = Settings.load(VALUES)
PROFILES = sorted(SETTINGS.profiles)
SERVICES = ("gemma-3-27b-vllm", "llama-3-70b-tgi")


# ---- the ScaledObjects and the rules, as the chart renders them ------------------------
def render_keda(profile: str, scrape_interval: int = STEP) -> dict[str, str]:
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    values["global"]["pickspin"]["defaultProfile"] = profile
    values["global"]["prometheus"]["scrapeInterval"] = scrape_interval
    with helm.Chart.load(REPO / "keda") as chart:
        rendered: dict[str, str] = chart.render({"global": values["global"]}, name="p",
                                                namespace="p")
    return rendered


def rendered_scaled_objects(profile: str) -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all(render_keda(profile)["pickspin-keda/templates/scaledobject.yaml"])
    return {d["metadata"]["name"]: d for d in docs if d}


def rendered_rules(scrape_interval: int = STEP) -> dict[str, Any]:
    """The rule groups of the chart's PrometheusRule (what the Operator loads)."""
    (rule,) = [d for d in yaml.safe_load_all(
        render_keda(SETTINGS.default_profile, scrape_interval)[
            "pickspin-keda/templates/prometheusrule.yaml"]) if d]
    spec: dict[str, Any] = rule["spec"]
    return spec


def write_rules(folder: Path) -> str:
    (folder / "recording-rules.yaml").write_text(yaml.safe_dump(rendered_rules()))
    return "recording-rules.yaml"


@pytest.mark.parametrize("scrape_interval", [1, 15, 30, 60])
def test_every_rate_window_is_four_scrape_intervals(scrape_interval: int) -> None:
    """One value: the scrape interval sets every window (a [1m] window at a 30 s scrape
    would hold one sample, and rate() of one sample is empty)."""
    exprs = [r["expr"] for g in rendered_rules(scrape_interval)["groups"] for r in g["rules"]]
    windows = {w for e in exprs for w in re.findall(r"\[([^\]]+)\]", e)}
    assert windows == {f"{4 * scrape_interval}s"}


@dataclass(frozen=True)
class Keda:
    """What KEDA reads from one rendered ScaledObject."""

    params: ScalingParams
    demand_query: str
    pending_query: str

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Keda:
        triggers = {t["name"]: t["metadata"] for t in obj["spec"]["triggers"]}
        return cls(ScalingParams.from_scaled_object(obj), triggers["demand"]["query"],
                   triggers["pending"]["query"])

    def active_expr(self) -> str:
        p = self.params
        return (f"(({self.demand_query}) > {p.activation_threshold}) or "
                f"(({self.pending_query}) > {p.pending_activation_threshold})")

    def replicas_expr(self) -> str:
        """KEDA + HPA in PromQL: the largest per-trigger ceil(value / threshold), the
        largest of those over the scale-down window, clamped to [max(1, min), max]; zero
        (or the warm pool) once no trigger was active for cooldownPeriod."""
        p = self.params
        raw = (f'max(label_replace(ceil(({self.demand_query}) / {p.threshold}), '
               f'"trigger", "demand", "", "") or label_replace(ceil(({self.pending_query}) / '
               f'{p.pending_target}), "trigger", "pending", "", ""))')
        stabilized = f"max_over_time(({raw})[{p.stabilization_seconds}s:{STEP}s])"
        hpa = f"clamp({stabilized}, {p.hpa_min}, {p.max_replicas})"
        if p.min_replicas > 0:
            return hpa
        was_active = f"max_over_time(({self.active_expr()})[{p.cooldown_seconds}s:{STEP}s])"
        return f"({hpa} and on() {was_active}) or on() vector(0)"


# ---- the synthetic scenario ----------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    name: str
    seconds: int
    demand: float  # λ × W in concurrent requests
    pending: float = 0.0


def phases(params: ScalingParams) -> list[Phase]:
    """Idle, woken by pending requests, busy, a burst past the budget, a drop, silence.

    Demands sit well away from the HPA's 10 % tolerance band at the checked instants: the
    PromQL form cannot know the current replicas the tolerance compares against (the policy
    does; tests/policy/test_scaling_policy.py checks the tolerance itself)."""
    t = params.threshold
    return [
        Phase("idle", 300, 0.0),
        Phase("wake", 30, 0.0, pending=3),
        Phase("busy", 600, 2.5 * t),
        Phase("burst", 300, 9 * t),
        Phase("drop", params.stabilization_seconds + 300, 0.5 * t),
        Phase("silence", params.cooldown_seconds + 300, 0.0),
    ]


@dataclass
class Scenario:
    """Per-sample counters of the gateway's metrics for one service, and the exact
    instant values the recording rules derive from them (samples every STEP seconds, so a
    RATE_WINDOW rate window holds its first sample at its start: no extrapolation)."""

    arrivals: list[float]  # pickspin_requests_total / _count: cumulative requests
    busy: list[float]  # pickspin_request_duration_seconds_sum: cumulative seconds
    pending: list[float]
    starts: dict[str, int]  # phase name → first sample index

    @classmethod
    def build(cls, plan: list[Phase]) -> Scenario:
        arrivals, busy, pending, starts = [0.0], [0.0], [0.0], {}
        for phase in plan:
            starts[phase.name] = len(arrivals) - 1
            rate = phase.demand / LATENCY
            for _ in range(phase.seconds // STEP):
                arrivals.append(arrivals[-1] + rate * STEP)
                busy.append(busy[-1] + phase.demand * STEP)
                pending.append(phase.pending)
        return cls(arrivals, busy, pending, starts)

    def rate(self, series: list[float], i: int) -> float:
        back = RATE_WINDOW // STEP
        return (series[i] - series[max(0, i - back)]) / RATE_WINDOW

    def demand(self, i: int) -> float:
        return self.rate(self.busy, i)


def simulate(scenario: Scenario, params: ScalingParams, until: int) -> list[Decision]:
    """The local scaler's loop: `decide` at every poll, remembering the last active time
    and the raw recommendations of the stabilisation window."""
    current, last_active = params.min_replicas, -math.inf
    history: list[tuple[int, int]] = []
    decisions = []
    for i in range(RATE_WINDOW // STEP, until + 1):
        now = i * STEP
        recent = tuple(r for t, r in history if now - params.stabilization_seconds < t < now)
        observation = Observation(
            demand=scenario.demand(i), pending=scenario.pending[i], current_replicas=current,
            idle_seconds=now - last_active, recent_recommendations=recent)
        decision = decide(observation, params)
        if decision.active:
            last_active = now
        if decision.recommendation is not None:
            history.append((now, decision.recommendation))
        current = decision.replicas
        decisions.append(decision)
    return decisions


def instants(plan: list[Phase], scenario: Scenario, params: ScalingParams) -> dict[str, int]:
    """Sample indexes worth checking, away from the edges of every window."""
    s = scenario.starts
    last_active = s["silence"] + (RATE_WINDOW - STEP) // STEP
    return {
        "idle": s["wake"] - 1,
        "woken": s["wake"] + 1,
        "busy": s["busy"] + 20,
        "burst": s["burst"] + 10,
        "drop, stabilising": s["drop"] + params.stabilization_seconds // (2 * STEP),
        "drop, settled": s["drop"] + (params.stabilization_seconds + RATE_WINDOW + 30) // STEP,
        "silence, cooling down": last_active + params.cooldown_seconds // (2 * STEP),
        "silence, cooled down": last_active + (params.cooldown_seconds + 60) // STEP,
    }


# ---- the promtool test file ----------------------------------------------------------
def series_line(name: str, labels: dict[str, str], values: list[float]) -> dict[str, str]:
    label_text = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{label_text}}}",
            "values": " ".join(f"{v:.6g}" if v != int(v) else str(int(v)) for v in values)}


def promtool_tests(keda: Keda, svc_model: str, svc_backend: str) -> tuple[dict, list[Reason]]:
    params = keda.params
    plan = phases(params)
    scenario = Scenario.build(plan)
    labels = {"model": svc_model, "backend": svc_backend}
    ttft = [v * 0.05 for v in scenario.arrivals]
    inputs = [
        series_line("pickspin_requests_total", {**labels, "outcome": "success"},
                    scenario.arrivals),
        series_line("pickspin_request_duration_seconds_count", labels, scenario.arrivals),
        series_line("pickspin_request_duration_seconds_sum", labels, scenario.busy),
        series_line("pickspin_ttft_seconds_count", labels, scenario.arrivals),
        series_line("pickspin_ttft_seconds_sum", labels, ttft),
        # the router-side trigger adds held and in-flight requests; the scenario holds
        # them all as pending, so in flight stays at zero (a gauge present all along)
        series_line("pickspin_pending_requests", {"service": params.service}, scenario.pending),
        series_line("pickspin_inflight_requests", {"service": params.service},
                    [0] * len(scenario.pending)),
    ]
    checks = []
    moments = instants(plan, scenario, params)
    decisions = simulate(scenario, params, max(moments.values()))
    first = RATE_WINDOW // STEP
    selector = f'{{backend="{svc_backend}", model="{svc_model}"}}'
    for i in moments.values():
        decision = decisions[i - first]
        at = f"{i * STEP}s"
        checks.append({"expr": keda.replicas_expr(), "eval_time": at,
                       "exp_samples": [{"labels": "{}", "value": decision.replicas}]})
        checks.append({"expr": f"count({keda.active_expr()})", "eval_time": at,
                       "exp_samples": [{"labels": "{}", "value": 1}] if decision.active else []})
        demand = scenario.demand(i)
        if demand > 0:  # the recording rules: λ, W and L = λ × W
            arrival = scenario.rate(scenario.arrivals, i)
            for rule, value in (("pickspin:service_demand:rate", demand),
                                ("pickspin:service_arrival_rate:rate", arrival),
                                ("pickspin:service_latency_seconds:mean", demand / arrival)):
                checks.append({"expr": rule, "eval_time": at, "exp_samples": [
                    {"labels": f"{rule}{selector}", "value": value}]})
    test = {"name": f"{params.service}: {', '.join(moments)}", "interval": f"{STEP}s",
            "input_series": inputs, "promql_expr_test": checks}
    return test, [d.reason for d in decisions]


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is absent (Debian package `prometheus`)")
    return found


@pytest.mark.parametrize("profile", PROFILES)
def test_keda_and_the_python_policy_agree(promtool: str, tmp_path: Path, profile: str) -> None:
    scaled = rendered_scaled_objects(profile)
    tests, reasons = [], []
    for name in SERVICES:
        keda = Keda.from_object(scaled[name])
        svc = SETTINGS.service(name)
        expected = scaling_for(SETTINGS, name, profile,
                               activation_threshold=keda.params.activation_threshold,
                               polling_interval=keda.params.polling_interval)
        assert keda.params == expected, "the rendered ScaledObject is not scaling_for's"
        test, seen = promtool_tests(keda, svc.model, svc.backend)
        tests.append(test)
        reasons += seen
    # the scenario exercises every rule of Algorithm 1
    assert {Reason.SCALE_UP, Reason.SCALE_DOWN, Reason.STABILIZING} <= set(reasons)
    assert Reason.ACTIVATE in reasons or all(
        scaled[n]["spec"]["minReplicaCount"] > 0 for n in SERVICES)
    assert Reason.COOLDOWN_ELAPSED in reasons or all(
        scaled[n]["spec"]["minReplicaCount"] > 0 for n in SERVICES)
    rules = write_rules(tmp_path)
    spec = tmp_path / "keda-vs-policy.test.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [rules], "evaluation_interval":
                                    f"{STEP}s", "tests": tests}, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", spec.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_notice_a_disagreement(promtool: str, tmp_path: Path) -> None:
    """The check has teeth: a wrong expected replica count fails."""
    keda = Keda.from_object(rendered_scaled_objects(SETTINGS.default_profile)[SERVICES[0]])
    svc = SETTINGS.service(SERVICES[0])
    test, _ = promtool_tests(keda, svc.model, svc.backend)
    test["promql_expr_test"][0]["exp_samples"][0]["value"] += 1
    rules = write_rules(tmp_path)
    spec = tmp_path / "wrong.test.yaml"
    spec.write_text(yaml.safe_dump({"rule_files": [rules], "evaluation_interval":
                                    f"{STEP}s", "tests": [test]}))
    result = subprocess.run([promtool, "test", "rules", spec.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
