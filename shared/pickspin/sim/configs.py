"""The configurations a trace is replayed under: pickspin per profile, and the baselines.

Static baselines are sized the way a careful operator without an autoscaler would: route
every prompt of the trace with every deployed service warm (the same `select`), take each
service's peak arrival rate over `peak_bin_seconds`, and give it the fewest replicas whose
M/M/c queue (Erlang C, c = replicas × concurrency, mean service time from `timing`) keeps
the chance that a request waits at all at or below 1 − `target` at that peak — so queueing
alone never spends the SLO — within the service's replica budget. Services the routing never
picks are not deployed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pickspin.core.events import ServiceStats
from pickspin.core.selection import select
from pickspin.core.settings import Settings, StrategyName
from pickspin.core.warmpool import active_windows
from pickspin.sim.engine import EVEN
from pickspin.sim.prompts import PromptRow
from pickspin.sim.runs import RANDOM_ASSIGNMENT, Config, Environment
from pickspin.sim.timing import ServiceTiming
from pickspin.sim.trace import Trace

#: static-lean leaves out services that would take fewer than this share of the requests
LEAN_SHARE = 0.01
#: the model every request goes to in the always-large and scaling-without-routing runs
LARGE = "deepseek-r1"


def erlang_c(servers: int, load: float) -> float:
    """P(an arrival waits) in M/M/c with `servers` and offered `load` (λ × mean service)."""
    if load <= 0:
        return 0.0
    if load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1 - b))


def replicas_for(peak_rate: float, timing: ServiceTiming, tokens: int, target: float,
                 budget: int) -> int:
    """The fewest replicas (≥ 1) whose P(wait) at `peak_rate` is ≤ 1 − target, capped at
    `budget`."""
    load = peak_rate * timing.mean_service_seconds(tokens)
    for n in range(1, budget + 1):
        if erlang_c(n * timing.concurrency, load) <= 1 - target:
            return n
    return budget


def warm_choices(settings: Settings, config: Config, rows: Mapping[str, PromptRow],
                 keys: list[str], seed: int = 13, time_of_day: float | None = None
                 ) -> dict[str, str]:
    """prompt id → the service `config` routes it to when every service it deploys (all,
    unless it is static) is warm, at `time_of_day` (the warm pools that hold then, which the
    billed cost basis reads)."""
    deployed = config.static if config.static is not None else \
        {s.name: 1 for s in settings.services}
    warm = {s.name: ServiceStats(replicas=1, ready_replicas=1) if s.name in deployed
            else ServiceStats(healthy=False) for s in settings.services}
    names = [s.name for s in settings.services]
    model_of = {s.name: s.model for s in settings.services}
    rng = random.Random(seed)
    out = {}
    for key in keys:
        row = rows[key]
        exclude = tuple(n for n in names if model_of[n] not in row.correct)
        if config.model is None:
            d = select(settings, warm, row.probabilities, profile=config.profile,
                       strategy=config.strategy, exclude=exclude, rng=rng,
                       complexity=row.complexity, success=row.success or None,
                       settled=row.settled, time_of_day=time_of_day)
        else:
            model = config.model if config.model != RANDOM_ASSIGNMENT else \
                rng.choice(sorted(row.correct))
            d = select(settings, warm, EVEN, profile=config.profile, model=model,
                       exclude=exclude, rng=rng, complexity="medium",
                       time_of_day=time_of_day)
        out[key] = d.chosen.service
    return out


@dataclass(frozen=True)
class Sizing:
    replicas: dict[str, int]
    peak_rate: dict[str, float]
    #: requests of the trace each service takes when every deployed service is warm
    requests: dict[str, int]


def size_static(settings: Settings, config: Config, trace: Trace,
                rows: Mapping[str, PromptRow], env: Environment, target: float,
                peak_bin_seconds: float = 300.0) -> Sizing:
    """Replicas per service for a static deployment of `config` (see the module doc)."""
    # the routing changes only where a scheduled warm pool begins or ends (billed Ĉ)
    at = (env.start_of_day + trace.times) % 86_400
    state = [active_windows(settings, config.profile, float(t)) for t in at]
    services = np.empty(len(trace.prompts), dtype=object)
    for key in set(state):
        mask = np.array([s == key for s in state])
        first = float(at[mask][0])
        prompts = [p for p, m in zip(trace.prompts, mask, strict=True) if m]
        chosen = warm_choices(settings, config, rows, sorted(set(prompts)),
                              time_of_day=first)
        services[mask] = [chosen[p] for p in prompts]
    edges = np.arange(0, trace.seconds + peak_bin_seconds, peak_bin_seconds)
    replicas, peaks, taken = {}, {}, {}
    for svc in settings.services:
        at = trace.times[services == svc.name]
        if not len(at):
            continue
        taken[svc.name] = len(at)
        counts, _ = np.histogram(at, edges)
        peaks[svc.name] = float(counts.max() / peak_bin_seconds)
        timing = ServiceTiming.of(svc, env.spawn_seconds)
        replicas[svc.name] = replicas_for(peaks[svc.name], timing, env.tokens, target,
                                          svc.max_replicas)
    return Sizing(replicas, peaks, taken)


def configurations(settings: Settings, trace: Trace, rows: Mapping[str, PromptRow],
                   env: Environment, target: float, profiles: list[str] | None = None,
                   baselines: bool = True) -> tuple[list[Config], dict[str, Sizing]]:
    """pickspin under each profile, then the baselines under the default profile."""
    default = settings.default_profile
    out = [Config(f"pickspin/{p}", p, note="Eq. 2 selection + the profile's scaling")
           for p in (profiles or list(settings.profiles))]
    sizing: dict[str, Sizing] = {}
    if not baselines:
        return out, sizing
    static = Config("static-peak", default)
    sizing["static-peak"] = size_static(settings, static, trace, rows, env, target)
    # an operator would not keep a service for a trickle: without the services that take
    # under LEAN_SHARE of the requests (the routing sends those elsewhere), resized
    full = sizing["static-peak"]
    kept = [n for n, c in full.requests.items() if c >= LEAN_SHARE * len(trace)]
    lean = Config("static-lean", default, static={n: 1 for n in kept})
    lean_sizing = size_static(settings, lean, trace, rows, env, target)
    sizing["static-lean"] = lean_sizing
    large = Config("always-large", default, model=LARGE)
    sizing["always-large"] = size_static(settings, large, trace, rows, env, target)
    out += [
        Config("static-peak", default, static=sizing["static-peak"].replicas,
               note="the same Pick, no autoscaler: replicas sized for the SLO at peak"),
        Config("static-lean", default, static=lean_sizing.replicas,
               note=f"static-peak without the services that take under {100 * LEAN_SHARE:g} % "
                    "of the requests (the routing sends those elsewhere), resized"),
        Config("always-large", default, model=LARGE, static=sizing["always-large"].replicas,
               note=f"every request to {LARGE}, static, sized for the SLO at peak"),
        Config("random-assignment", default, model=RANDOM_ASSIGNMENT,
               note="a uniformly random model per request, with Spin"),
        Config("latency-only", default, strategy=StrategyName.LATENCY.value,
               note="the fastest candidate (within the profile's floor), with Spin"),
        Config("scaling-without-routing", default, model=LARGE,
               note=f"every request to {LARGE}, with Spin"),
        Config("routing-without-scaling", default,
               static={s.name: 1 for s in settings.services},
               note="the same Pick, one replica of every service always on "
                    "(`pickspin up --always-on`)"),
    ]
    return out, sizing
