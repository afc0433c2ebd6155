"""A trace through Pick and Spin in simulated time: the library's own decisions, the
queues and cold starts around them simulated.

Per request: Eq. 2 selection (`selection.select`) on the latest telemetry snapshot, the
profile's cold-start plan (`coldplan.cold_plan`: hold, or a warm substitute while the
chosen service wakes), then a FIFO queue at the service and its `timing`. Every
`polling_seconds` each ScaledObject is polled (`policy.poll`, i.e. `decide`) with the demand
KEDA's query reads — λ×W as `rate(duration_sum[window])`: the durations of the requests
that finished within the window, over the window — and the pending trigger: requests the
gateway holds or wakes for the service plus those in flight at it (plus, on the local run,
those its pool holds with no ready replica). Every `tick_seconds` telemetry makes a snapshot
the real way (`telemetry.Window` over completed requests, replicas and readiness as the
scaler reports them), taken when a request arrives and the selector's copy is older than
that, as the selector pulls it, with the requests in flight at each service (the gateway's
gauge, which `promstats` reports as `running`). Static configurations keep a fixed number
of ready replicas instead.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pickspin.adapters.replicas import Replicas, probe_from
from pickspin.core.coldplan import cold_plan
from pickspin.core.errors import NoCandidate
from pickspin.core.events import Candidate, InferenceCompleted, ServiceStats, TelemetrySnapshot
from pickspin.core.policy import PollMemory, ScalingParams, poll, scaling_for
from pickspin.core.selection import select
from pickspin.core.settings import COMPLEXITY_CLASSES, Settings
from pickspin.core.telemetry import Probe, Window, snapshot_of
from pickspin.core.warmpool import warm_pools
from pickspin.sim.prompts import PromptRow
from pickspin.sim.runs import (
    CLUSTER,
    RANDOM_ASSIGNMENT,
    Config,
    Environment,
    Outcome,
    Result,
)
from pickspin.sim.timing import ServiceTiming
from pickspin.sim.trace import Trace

EVEN = {k: 1 / len(COMPLEXITY_CLASSES) for k in COMPLEXITY_CLASSES}
Progress = Callable[[float], None]
# event kinds, in tie-break order at one instant
READY, DONE, TIMEOUT, WAKE_END, POLL, SAMPLE = range(6)


@dataclass
class _Replica:
    started: float
    ready: bool = False
    draining: bool = False
    busy: int = 0


@dataclass
class _Service:
    timing: ServiceTiming
    params: ScalingParams | None
    memory: PollMemory
    replicas: list[_Replica] = field(default_factory=list)
    queue: deque[int] = field(default_factory=deque)
    holders: set[int] = field(default_factory=set)
    waking: bool = False
    inflight: int = 0
    finished: deque[tuple[float, float]] = field(default_factory=deque)
    replica_seconds: float = 0.0
    since: float = 0.0
    cold_starts: int = 0

    @property
    def count(self) -> int:
        return sum(1 for r in self.replicas if not r.draining)

    @property
    def ready(self) -> int:
        return sum(1 for r in self.replicas if r.ready and not r.draining)

    def free(self) -> _Replica | None:
        best = None
        for r in self.replicas:
            if r.ready and not r.draining and r.busy < self.timing.concurrency \
                    and (best is None or r.busy < best.busy):
                best = r
        return best


class Simulation:
    """One configuration over one trace. `run()` returns the `Result`."""

    def __init__(self, settings: Settings, config: Config, trace: Trace,
                 rows: Mapping[str, PromptRow], env: Environment = CLUSTER, seed: int = 13
                 ) -> None:
        self.settings, self.config, self.trace, self.rows, self.env = \
            settings, config, trace, rows, env
        self.rng = random.Random(seed)
        self.z = np.random.default_rng(seed).standard_normal(len(trace))
        self.names = [s.name for s in settings.services]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.now = 0.0
        self.svc: dict[str, _Service] = {}
        for s in settings.services:
            params = None if config.static is not None else scaling_for(
                settings, s.name, config.profile, polling_interval=int(env.polling_seconds))
            self.svc[s.name] = _Service(ServiceTiming.of(s, env.spawn_seconds), params,
                                        PollMemory(0.0))
        self.window = Window(settings, env.telemetry_window_seconds, clock=lambda: self.now)
        self.snapshot: Mapping[str, ServiceStats] = {}
        self.snapshot_at = 0.0
        self.heap: list[tuple[float, int, int, int, str]] = []
        self.seq = 0
        n = len(trace)
        self.out = Outcome(np.full(n, -1, dtype=np.int16), np.full(n, np.nan),
                           np.full(n, np.nan), np.zeros(n, dtype=bool),
                           np.zeros(n, dtype=bool), ["" for _ in range(n)])
        #: held requests' order after a timed-out hold; the replica serving each request
        self.plans: dict[int, tuple[Candidate, ...]] = {}
        self.serving: dict[int, _Replica] = {}
        self.limits: dict[int, float] = {}
        self.failed = 0
        self.model_of = {s.name: s.model for s in settings.services}
        self.backend_of = {s.name: s.backend for s in settings.services}
        self.busy_slot_seconds = 0.0
        self.ready_slot_seconds = 0.0
        self.errors = 0
        self.samples: list[tuple[float, list[int], list[int], list[int]]] = []

    # ---- events ------------------------------------------------------------------------
    def _at(self, t: float, kind: int, i: int = -1, name: str = "") -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, kind, self.seq, i, name))

    def run(self, progress: Progress | None = None) -> Result:
        if self.config.static is not None:
            for name, n in self.config.static.items():
                for _ in range(n):
                    self.svc[name].replicas.append(_Replica(0.0, ready=True))
        else:
            for s in self.svc.values():  # the warm pools, ready when the trace starts
                assert s.params is not None
                warm = max(s.params.min_replicas, s.params.scheduled(self._time_of_day()))
                s.replicas = [_Replica(0.0, ready=True) for _ in range(warm)]
        self._tick()
        if self.config.static is None:
            self._at(self.env.polling_seconds, POLL)
        self._at(0.0, SAMPLE)
        times, k, n = self.trace.times, 0, len(self.trace)
        step = max(1, n // 200)
        while k < n or self._busy():
            if k < n and (not self.heap or times[k] < self.heap[0][0]):
                self._advance(float(times[k]))
                self._arrive(k)
                k += 1
                if progress is not None and k % step == 0:
                    progress(k / n)
                continue
            t, kind, _, i, name = heapq.heappop(self.heap)
            self._advance(t)
            self._handle(kind, i, name)
        self._advance(self.trace.seconds)
        for s in self.svc.values():
            self._touch(s)
        return self._result()

    def _busy(self) -> bool:
        return any(s.inflight or s.holders for s in self.svc.values())

    def _advance(self, t: float) -> None:
        self.now = max(self.now, t)

    def _touch(self, s: _Service) -> None:
        """Account replica-, ready-slot- and busy-slot-seconds up to now, before `s`
        changes (lazily, so an event costs nothing for the services it leaves alone)."""
        dt = self.now - s.since
        if dt > 0:
            if s.replicas:
                s.replica_seconds += len(s.replicas) * dt
                ready = sum(1 for r in s.replicas if r.ready)
                self.ready_slot_seconds += ready * s.timing.concurrency * dt
                self.busy_slot_seconds += sum(r.busy for r in s.replicas) * dt
            s.since = self.now

    def _handle(self, kind: int, i: int, name: str) -> None:
        if kind == DONE:
            self._done(i, name)
        elif kind == READY:
            self._ready(name)
        elif kind == TIMEOUT:
            s = self.svc[name]
            if i in s.holders:
                s.holders.discard(i)
                after = self.plans.pop(i)
                if after:
                    self.out.action[i] = "hold-timeout"
                    self._dispatch(i, after, self.limits[i])
                else:  # held twice in vain: the gateway answers with an error
                    self.out.action[i] = "failed"
                    self.failed += 1
        elif kind == WAKE_END:
            self.svc[name].waking = False
        elif kind == POLL:
            self._poll()
            self._at(self.now + self.env.polling_seconds, POLL)
        elif kind == SAMPLE:
            self.samples.append((self.now, [s.count for s in self.svc.values()],
                                 [s.ready for s in self.svc.values()],
                                 [len(s.queue) + len(s.holders) for s in self.svc.values()]))
            if self.now < self.trace.seconds:
                self._at(self.now + self.env.sample_seconds, SAMPLE)

    # ---- Pick --------------------------------------------------------------------------
    def _arrive(self, i: int) -> None:
        if self.now - self.snapshot_at >= self.env.tick_seconds:
            self._tick()  # the selector pulls a snapshot when its copy is stale
        row = self.rows[self.trace.prompts[i]]
        exclude = tuple(n for n in self.names if self.model_of[n] not in row.correct)
        cfg = self.config
        try:
            if cfg.model is None:
                d = select(self.settings, self.snapshot, row.probabilities,
                           profile=cfg.profile, strategy=cfg.strategy, exclude=exclude,
                           rng=self.rng, complexity=row.complexity,
                           success=row.success or None, pools=self._pools(),
                           settled=row.settled)
            else:  # the gateway's concrete-model path: no classification, still Spin
                model = cfg.model if cfg.model != RANDOM_ASSIGNMENT else \
                    self.rng.choice(sorted(row.correct))
                d = select(self.settings, self.snapshot, EVEN, profile=cfg.profile,
                           model=model, exclude=exclude, rng=self.rng, complexity="medium",
                           pools=self._pools())
        except NoCandidate:
            self.errors += 1
            return
        plan = cold_plan(self.settings, d.profile, d.chosen, d.runners_up, d.overflow)
        self.out.action[i] = plan.action
        if plan.action == "substitute":
            self._wake(plan.chosen.service, plan.limit)
        self.limits[i] = plan.last_hold
        if plan.action == "hold" and self.svc[plan.chosen.service].ready == 0:
            self._hold(i, plan.chosen.service, plan.after_timeout, plan.limit)
            return
        self._dispatch(i, plan.now, plan.last_hold)

    def _pools(self) -> dict[str, int]:
        """The warm pools now (the base pool and the scheduled ones whose window holds)."""
        return warm_pools(self.settings, self.config.profile, self._time_of_day())

    def _time_of_day(self) -> float:
        return (self.env.start_of_day + self.now) % 86_400

    def _hold(self, i: int, name: str, after: tuple[Candidate, ...], limit: float) -> None:
        """The gateway holds `i` for `name` (counted as pending) until a replica is ready
        or `limit` passes; then `after` is tried, or, when empty, the request fails."""
        self.svc[name].holders.add(i)
        self.out.cold_wait[i] = True
        self.plans[i] = after
        self._at(self.now + limit, TIMEOUT, i, name)

    def _wake(self, name: str, limit: float) -> None:
        s = self.svc[name]
        if not s.waking and s.ready == 0:
            s.waking = True
            self._at(self.now + limit, WAKE_END, -1, name)

    def _dispatch(self, i: int, order: Sequence[Candidate], limit: float) -> None:
        """To the first candidate with a ready replica. With none (every one cold, or the
        snapshot was stale) no backend answers; the gateway holds the request once more for
        the first candidate (up to the plan's `last_hold`), then gives up."""
        target = next((c.service for c in order if self.svc[c.service].ready), None)
        if target is None:
            self._hold(i, order[0].service, (), limit)
        else:
            self._enqueue(i, target)

    def _enqueue(self, i: int, name: str) -> None:
        s = self.svc[name]
        s.inflight += 1
        self.out.service[i] = self.index[name]
        if s.ready == 0:
            self.out.cold_wait[i] = True
        replica = s.free()
        if replica is None:
            s.queue.append(i)
        else:
            self._start(i, name, replica)

    def _start(self, i: int, name: str, replica: _Replica) -> None:
        s = self.svc[name]
        self._touch(s)
        replica.busy += 1
        ttft_sample = s.timing.ttft(float(self.z[i]))
        arrival = float(self.trace.times[i])
        ttft = self.now - arrival + ttft_sample + self.env.overhead_seconds
        self.out.ttft[i] = ttft
        self.out.latency[i] = ttft + s.timing.decode_seconds(self.env.tokens)
        row = self.rows[self.trace.prompts[i]]
        self.out.correct[i] = row.correct.get(self.model_of[name], False)
        self._at(arrival + float(self.out.latency[i]), DONE, i, name)
        self.serving[i] = replica

    def _done(self, i: int, name: str) -> None:
        s = self.svc[name]
        self._touch(s)
        replica = self.serving.pop(i)
        replica.busy -= 1
        s.inflight -= 1
        latency = float(self.out.latency[i])
        s.finished.append((self.now, latency))
        self.window.add(InferenceCompleted.model_construct(
            request_id=str(i), service=name, model=self.model_of[name],
            backend=self.backend_of[name], outcome="success",
            ttft_seconds=float(self.out.ttft[i]), latency_seconds=latency,
            completion_tokens=self.env.tokens, cold_start=bool(self.out.cold_wait[i]),
            fallback=(), finished_at=self.now))
        if replica.draining:
            if replica.busy == 0:
                s.replicas.remove(replica)
        elif s.queue:
            self._start(s.queue.popleft(), name, replica)

    # ---- Spin --------------------------------------------------------------------------
    def _ready(self, name: str) -> None:
        s = self.svc[name]
        self._touch(s)
        for r in s.replicas:
            if not r.ready and not r.draining and r.started + s.timing.cold_start_seconds \
                    <= self.now + 1e-9:
                r.ready = True
        s.waking = False
        for i in sorted(s.holders):
            self.plans.pop(i, None)
            self._enqueue(i, name)  # counted as a cold-start wait when it was held
        s.holders.clear()
        while s.queue and (replica := s.free()) is not None:
            self._start(s.queue.popleft(), name, replica)

    def _poll(self) -> None:
        env = self.env
        for name, s in self.svc.items():
            assert s.params is not None
            while s.finished and s.finished[0][0] <= self.now - env.demand_window_seconds:
                s.finished.popleft()
            demand = sum(d for _, d in s.finished) / env.demand_window_seconds
            pending = len(s.holders) + int(s.waking) + s.inflight
            if env.pool_waiting_is_pending and s.ready == 0:
                pending += len(s.queue)
            _, decision = poll(s.memory, s.params, demand, pending, s.count, self.now,
                               self._time_of_day())
            self._scale(name, decision.replicas)

    def _scale(self, name: str, desired: int) -> None:
        s = self.svc[name]
        if desired == s.count:
            return
        self._touch(s)
        if s.count == 0 and desired > 0:
            s.cold_starts += 1
        while s.count < desired:
            s.replicas.append(_Replica(self.now))
            self._at(self.now + s.timing.cold_start_seconds, READY, -1, name)
        surplus = s.count - desired
        for r in [r for r in reversed(s.replicas) if not r.draining][:max(surplus, 0)]:
            r.draining = True  # newest first, as the local pool and a ReplicaSet do
            if r.busy == 0:
                s.replicas.remove(r)

    def _tick(self) -> None:
        if self.config.static is not None:
            probes = {n: Probe(healthy=False) for n in self.names
                      if n not in self.config.static}
            probes |= {n: probe_from(Replicas(c, c)) for n, c in self.config.static.items()}
        else:
            probes = {n: probe_from(Replicas(s.count, s.ready)) for n, s in self.svc.items()}
        snap: TelemetrySnapshot = snapshot_of(self.window.stats(), probes, self.now,
                                              self.window.seconds)
        # what Prometheus adds (`promstats`): requests in flight at each service, which
        # Algorithm 2's capacity check reads
        self.snapshot = {n: st.model_copy(update={"running": self.svc[n].inflight})
                         if self.svc[n].inflight else st for n, st in snap.services.items()}
        self.snapshot_at = self.now

    # ---- result ------------------------------------------------------------------------
    def _result(self) -> Result:
        svc = self.svc
        t = np.array([s[0] for s in self.samples])
        return Result(
            self.config, self.names, self.out,
            {n: s.replica_seconds for n, s in svc.items()},
            {n: s.replica_seconds * s.timing.dollars_per_replica_second for n, s in svc.items()},
            {n: s.replica_seconds * s.timing.gpus for n, s in svc.items()},
            {n: s.cold_starts for n, s in svc.items()},
            self.busy_slot_seconds, self.ready_slot_seconds, self.now, t,
            np.array([s[1] for s in self.samples]), np.array([s[2] for s in self.samples]),
            np.array([s[3] for s in self.samples]), self.errors, self.failed)


def simulate(settings: Settings, config: Config, trace: Trace, rows: Mapping[str, PromptRow],
             env: Environment = CLUSTER, seed: int = 13, progress: Progress | None = None
             ) -> Result:
    return Simulation(settings, config, trace, rows, env, seed).run(progress)
