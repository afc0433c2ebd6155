"""The Spin scaling policy (paper Algorithm 1) with KEDA's semantics, as pure functions.

One policy, two executors: in a cluster KEDA and the HPA it creates apply the ScaledObjects
that `keda/` renders; on one machine the local scaler calls `decide` with the same numbers.
`scaling_for` derives those numbers from the settings, so the chart, the local scaler and
the tests agree.

KEDA v2.20 semantics (https://keda.sh/docs/2.20/reference/scaledobject-spec/ and the HPA
algorithm, https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/):

- a trigger's value v gives ceil(v / threshold) replicas (metricType AverageValue); with
  several triggers the HPA takes the largest proposal;
- the HPA leaves the replicas alone while |v / (threshold × current) − 1| ≤ 10 %;
- the ScaledObject is *active* when a trigger's value exceeds its activation threshold;
  KEDA itself moves 0 → max(min, 1) when active and 1 → 0 once it has been inactive for
  `cooldownPeriod` (only when minReplicaCount is 0); the HPA moves 1 ↔ N within
  [max(1, minReplicaCount), maxReplicaCount];
- scale-down is stabilised: the HPA applies the largest raw recommendation of the last
  `stabilizationWindowSeconds` (scale-up is not delayed);
- a `cron` trigger (a profile's scheduled warm pool) is active from its start to its end
  every day and then asks for `desiredReplicas` (metric = desiredReplicas, AverageValue
  target 1); outside its window it is inactive (https://keda.sh/docs/2.20/scalers/cron/).

>>> params = ScalingParams(service="m-vllm", threshold=10, min_replicas=0, max_replicas=4,
...                        cooldown_seconds=300, stabilization_seconds=120)
>>> decide(Observation(demand=25, pending=0, current_replicas=1), params).replicas
3
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pickspin.core.profiles import covers
from pickspin.core.settings import Settings
from pickspin.core.warmpool import scheduled_pools, warm_pools

#: The HPA's default tolerance (kube-controller-manager --horizontal-pod-autoscaler-tolerance).
HPA_TOLERANCE = 0.1
#: KEDA's default pollingInterval in seconds.
DEFAULT_POLLING_INTERVAL = 30


@dataclass(frozen=True)
class Cron:
    """A KEDA `cron` trigger: `replicas` from `start` to `end` (seconds after midnight in
    the ScaledObject's timezone), every day."""

    start: int
    end: int
    replicas: int

    def covers(self, time_of_day: float) -> bool:
        return covers(self.start, self.end, time_of_day)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> Cron:
        """From a cron trigger's metadata as the keda chart renders it (daily `M H * * *`)."""
        return cls(_daily(meta["start"]), _daily(meta["end"]), int(meta["desiredReplicas"]))


def _daily(expression: str) -> int:
    minute, hour, *rest = str(expression).split()
    if rest != ["*", "*", "*"] or not (minute.isdigit() and hour.isdigit()):
        raise ValueError(f"only daily cron times (`M H * * *`) are supported, got "
                         f"{expression!r}")
    return int(hour) * 3600 + int(minute) * 60


@dataclass(frozen=True)
class ScalingParams:
    """What one ScaledObject says about one service (model × backend)."""

    service: str
    #: target concurrency per replica: service concurrency × profile targetUtilization
    threshold: float
    #: the service's share of its tier's warm pool under the profile (minReplicaCount;
    #: `pickspin.core.warmpool.warm_pools`)
    min_replicas: int
    #: the GPU budget (maxReplicaCount)
    max_replicas: int
    #: idle seconds before scale to zero (cooldownPeriod)
    cooldown_seconds: int
    #: scale-down stabilisation window of the HPA behavior
    stabilization_seconds: int
    #: the demand trigger is active above this value (activationThreshold)
    activation_threshold: float = 0.0
    #: the pending-requests trigger is active above this value
    pending_activation_threshold: float = 0.0
    #: threshold of the pending-requests trigger (requests per replica)
    pending_threshold: float | None = None
    polling_interval: int = DEFAULT_POLLING_INTERVAL
    model: str = ""
    backend: str = ""
    #: the profile's scheduled warm pools on this service (cron triggers)
    schedules: tuple[Cron, ...] = ()
    #: IANA time zone the cron triggers are evaluated in
    timezone: str = "UTC"

    @classmethod
    def from_scaled_object(cls, obj: Mapping[str, Any]) -> ScalingParams:
        """Read the numbers back from a ScaledObject the keda chart rendered (triggers
        named `demand` and `pending`), so a local scaler applies exactly what KEDA would."""
        spec = obj["spec"]
        triggers = {t.get("name"): t["metadata"] for t in spec["triggers"]}
        demand, pending = triggers["demand"], triggers.get("pending", {})
        behavior = (spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
                    .get("behavior", {}))
        labels = obj.get("metadata", {}).get("labels", {})
        crons = [t["metadata"] for t in spec["triggers"] if t.get("type") == "cron"]
        return cls(
            service=obj["metadata"]["name"],
            threshold=float(demand["threshold"]),
            pending_threshold=float(pending.get("threshold", demand["threshold"])),
            activation_threshold=float(demand.get("activationThreshold", 0)),
            pending_activation_threshold=float(pending.get("activationThreshold", 0)),
            min_replicas=int(spec.get("minReplicaCount", 0)),
            max_replicas=int(spec.get("maxReplicaCount", 100)),
            cooldown_seconds=int(spec.get("cooldownPeriod", 300)),
            # the HPA's default scale-down window is 300 s
            stabilization_seconds=int(behavior.get("scaleDown", {})
                                      .get("stabilizationWindowSeconds", 300)),
            polling_interval=int(spec.get("pollingInterval", DEFAULT_POLLING_INTERVAL)),
            model=labels.get("pickspin.io/model", ""),
            backend=labels.get("pickspin.io/backend", ""),
            schedules=tuple(Cron.from_metadata(m) for m in crons),
            timezone=str(crons[0].get("timezone", "UTC")) if crons else "UTC",
        )

    @property
    def pending_target(self) -> float:
        """Threshold of the pending trigger (the demand threshold unless set)."""
        return self.pending_threshold or self.threshold

    def scheduled(self, time_of_day: float | None) -> int:
        """The replicas the cron triggers ask for at `time_of_day` (seconds after midnight in
        `timezone`): the largest of the active ones, 0 when none is (or no time is given)."""
        if time_of_day is None:
            return 0
        return max((c.replicas for c in self.schedules if c.covers(time_of_day)), default=0)

    @property
    def hpa_min(self) -> int:
        """The HPA's minReplicas: KEDA gives it max(1, minReplicaCount)."""
        return max(1, self.min_replicas)


@dataclass(frozen=True)
class Observation:
    """One polling instant, as KEDA sees it."""

    #: Little's-law demand λ × W (arrival rate × mean latency), in concurrent requests
    demand: float
    #: requests the router holds for this service or has in flight at it
    #: (pickspin_pending_requests + pickspin_inflight_requests)
    pending: float
    current_replicas: int
    #: seconds since the ScaledObject was last active
    idle_seconds: float = 0.0
    #: raw HPA recommendations within the scale-down stabilisation window, oldest first
    recent_recommendations: tuple[int, ...] = ()
    #: replicas the active cron triggers ask for (0: none active)
    scheduled: int = 0


class Reason(StrEnum):
    ACTIVATE = "activate"  # KEDA: 0 → max(min, 1), demand or pending seen
    WARM_POOL = "warm-pool"  # KEDA: keep the warm pool although idle
    IDLE = "idle"  # at zero and nothing to do
    COOLDOWN_ELAPSED = "cooldown-elapsed"  # KEDA: inactive for cooldownPeriod → 0
    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    STABILIZING = "stabilizing"  # a lower recommendation held back by the window
    WITHIN_TOLERANCE = "within-tolerance"
    HOLD = "hold"


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: Reason
    active: bool
    #: the raw HPA recommendation to remember for stabilisation (None when KEDA decided)
    recommendation: int | None = None


def is_active(obs: Observation, params: ScalingParams) -> bool:
    """KEDA's activation: any trigger value above its activation threshold."""
    return (
        obs.demand > params.activation_threshold
        or obs.pending > params.pending_activation_threshold
        or obs.scheduled > 0
    )


def metric_proposal(value: float, threshold: float, current: int,
                    tolerance: float = HPA_TOLERANCE) -> int:
    """HPA replicas for one AverageValue metric: ceil(value / threshold) unless within
    tolerance of the current replicas (k8s replica_calculator, external per-pod metric)."""
    if threshold <= 0:
        raise ValueError("threshold must be > 0")
    if current > 0 and abs(1.0 - value / (threshold * current)) <= tolerance:
        return current
    return math.ceil(value / threshold)


def hpa_recommendation(obs: Observation, params: ScalingParams) -> int:
    """The largest proposal over the triggers (demand, pending and the active cron ones),
    before stabilisation."""
    return max(
        metric_proposal(obs.demand, params.threshold, obs.current_replicas),
        metric_proposal(obs.pending, params.pending_target, obs.current_replicas),
        metric_proposal(obs.scheduled, 1.0, obs.current_replicas) if obs.scheduled else 0,
    )


def _untolerated(obs: Observation, params: ScalingParams) -> int:
    """The proposal the HPA would make without its tolerance band."""
    return max(math.ceil(obs.demand / params.threshold),
               math.ceil(obs.pending / params.pending_target), obs.scheduled)


def stabilize(raw: int, current: int, recent: Iterable[int]) -> int:
    """HPA behavior: scale-up at once, scale-down to the window's largest recommendation."""
    if raw >= current:
        return raw
    return min(current, max((*recent, raw)))


def decide(obs: Observation, params: ScalingParams) -> Decision:
    """Desired replicas for one service at one polling instant (paper Algorithm 1:
    Little's-law capacity, warm pool, cooldown), executed the way KEDA and the HPA do."""
    active = is_active(obs, params)
    floor = min(params.min_replicas, params.max_replicas)
    current = obs.current_replicas
    if current == 0:
        if active:
            return Decision(max(floor, 1), Reason.ACTIVATE, active)
        if floor > 0:
            return Decision(floor, Reason.WARM_POOL, active)
        return Decision(0, Reason.IDLE, active)
    if not active and floor == 0 and obs.idle_seconds >= params.cooldown_seconds:
        return Decision(0, Reason.COOLDOWN_ELAPSED, active)

    raw = hpa_recommendation(obs, params)
    stabilized = stabilize(raw, current, obs.recent_recommendations)
    replicas = min(max(stabilized, params.hpa_min), params.max_replicas)
    if replicas > current:
        reason = Reason.SCALE_UP
    elif replicas < current:
        reason = Reason.SCALE_DOWN
    elif raw < current and stabilized == current and replicas > params.hpa_min:
        reason = Reason.STABILIZING
    elif raw == current and _untolerated(obs, params) != current:
        reason = Reason.WITHIN_TOLERANCE
    else:
        reason = Reason.HOLD
    return Decision(replicas, reason, active, recommendation=raw)


@dataclass
class PollMemory:
    """What an executor of the policy remembers of one ScaledObject between polls: when it
    was last active and its recent HPA recommendations (KEDA and the HPA keep the same)."""

    last_active: float
    recommendations: deque[tuple[float, int]] = field(default_factory=deque)


def poll(memory: PollMemory, params: ScalingParams, demand: float, pending: float,
         current: int, now: float, time_of_day: float | None = None
         ) -> tuple[Observation, Decision]:
    """One polling instant as KEDA runs it: forget recommendations older than the
    stabilisation window, `decide`, and remember what the next poll needs. `time_of_day`
    (seconds after midnight in `params.timezone`) is what the cron triggers read. Used by
    the local scaler on real processes and by the trace simulator in simulated time."""
    window = params.stabilization_seconds
    while memory.recommendations and now - memory.recommendations[0][0] > window:
        memory.recommendations.popleft()
    obs = Observation(demand=demand, pending=pending, current_replicas=current,
                      idle_seconds=now - memory.last_active,
                      recent_recommendations=tuple(r for _, r in memory.recommendations),
                      scheduled=params.scheduled(time_of_day))
    decision = decide(obs, params)
    if decision.active:
        memory.last_active = now
    if decision.recommendation is not None:
        memory.recommendations.append((now, decision.recommendation))
    return obs, decision


def target_concurrency(concurrency: int, utilization: float) -> float:
    """Threshold of the demand trigger; rounded like the chart (`round … 3`)."""
    return round(concurrency * utilization, 3)


def scaling_for(
    settings: Settings,
    service_name: str,
    profile: str | None = None,
    *,
    activation_threshold: float = 0.0,
    polling_interval: int = DEFAULT_POLLING_INTERVAL,
) -> ScalingParams:
    """The ScaledObject numbers of one service under a profile (default: the settings'
    defaultProfile). The keda chart renders the same numbers from the same values.

    Raises KeyError naming the unknown service or profile.
    """
    profile_name = profile or settings.default_profile
    if profile_name not in settings.profiles:
        raise KeyError(f"unknown profile {profile_name!r} (have {sorted(settings.profiles)})")
    svc = settings.service(service_name)  # KeyError listing the services there are
    scaling = settings.profile(profile_name).scaling
    crons = tuple(Cron(*entry.seconds, pools[svc.name])
                  for entry, pools in scheduled_pools(settings, profile_name)
                  if pools[svc.name] > 0)
    threshold = target_concurrency(svc.concurrency, scaling.target_utilization)
    return ScalingParams(
        service=svc.name,
        model=svc.model,
        backend=svc.backend,
        threshold=threshold,
        pending_threshold=threshold,
        min_replicas=warm_pools(settings, profile_name)[svc.name],
        max_replicas=svc.max_replicas,
        cooldown_seconds=scaling.cooldown_seconds,
        stabilization_seconds=scaling.scale_down_stabilization_seconds,
        activation_threshold=activation_threshold,
        polling_interval=polling_interval,
        schedules=crons,
        timezone=scaling.timezone,
    )
