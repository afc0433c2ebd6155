"""Request traces: (arrival second, prompt id) pairs, generated or read from a file.

The generator is a non-homogeneous Poisson process (drawn by thinning) whose rate follows
a named shape, seeded, so a seed and the parameters give the same trace on any machine:

- `steady`: a constant rate;
- `diurnal`: a working day — rate ∝ floor + (1 − floor) · ((1 − cos 2π(h − peak + 12)/24) / 2)^2
  over the hour of day h (default floor 0.03, peak 14:00), so nights are near idle;
- `bursty`: the diurnal day plus bursts — burst starts are a Poisson process
  (`bursts_per_hour`), each multiplies the rate by `burst_factor` for `burst_seconds`;
- `points`: a piecewise-linear rate `t:rps,t:rps,…` (flat outside the points).

Every shape is scaled so the expected number of requests over `seconds` is `requests`.
Prompt ids are drawn uniformly (with replacement) from the pool given.

A trace file is CSV with the header `timestamp,prompt_id` (seconds from the start).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPES = ("steady", "diurnal", "bursty", "points")
Rate = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Trace:
    """Arrival times (seconds, ascending) and the prompt id of each arrival."""

    times: np.ndarray
    prompts: tuple[str, ...]
    name: str = "trace"

    def __post_init__(self) -> None:
        if len(self.times) != len(self.prompts):
            raise ValueError("a trace needs one prompt id per arrival")
        if len(self.times) and np.any(np.diff(self.times) < 0):
            raise ValueError("arrival times must be ascending")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def seconds(self) -> float:
        return float(self.times[-1]) if len(self.times) else 0.0


@dataclass(frozen=True)
class TraceSpec:
    """What the generator is asked for (all of it is written into the report)."""

    shape: str = "diurnal"
    requests: int = 100_000
    seconds: float = 86_400.0
    seed: int = 7
    floor: float = 0.03
    peak_hour: float = 14.0
    bursts_per_hour: float = 0.5
    burst_factor: float = 6.0
    burst_seconds: float = 300.0
    points: str = ""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown trace shape {self.shape!r}; choose one of {SHAPES}")
        if self.requests < 0 or self.seconds <= 0:
            raise ValueError("requests must be >= 0 and seconds > 0")
        if not 0 <= self.floor <= 1:
            raise ValueError("floor must lie in [0, 1]")
        if self.shape == "points" and not self.points:
            raise ValueError("the points shape needs --rate 't:rps,t:rps,…'")


def parse_points(text: str) -> list[tuple[float, float]]:
    """`t:rate,t:rate,…` (seconds, requests per second), sorted by time."""
    points = []
    for part in text.split(","):
        t, _, rate = part.partition(":")
        try:
            points.append((float(t), float(rate)))
        except ValueError:
            raise ValueError(f"rate point {part!r} is not 'seconds:requests-per-second'") \
                from None
    if not points or any(r < 0 or t < 0 for t, r in points):
        raise ValueError("give at least one rate point, times and rates >= 0")
    return sorted(points)


def day_curve(t: np.ndarray, floor: float, peak_hour: float) -> np.ndarray:
    """The diurnal shape at seconds `t` (1 at the peak, `floor` at night)."""
    hours = (t / 3600.0) % 24.0
    wave = (1 - np.cos(2 * np.pi * (hours - peak_hour + 12) / 24)) / 2
    return floor + (1 - floor) * wave**2


def _shape(spec: TraceSpec, rng: np.random.Generator) -> tuple[Rate, float]:
    """The unscaled rate function and an upper bound of it."""
    if spec.shape == "steady":
        return (lambda t: np.ones_like(t)), 1.0
    if spec.shape == "points":
        pts = parse_points(spec.points)
        xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        return (lambda t: np.interp(t, xs, ys)), float(ys.max() or 1.0)
    base: Rate = lambda t: day_curve(t, spec.floor, spec.peak_hour)  # noqa: E731
    if spec.shape == "diurnal":
        return base, 1.0
    count = rng.poisson(spec.bursts_per_hour * spec.seconds / 3600)
    starts = np.sort(rng.uniform(0, spec.seconds, count))

    def bursty(t: np.ndarray) -> np.ndarray:
        at = np.searchsorted(starts, t, side="right") - 1
        inside = (at >= 0) & (t - starts[np.maximum(at, 0)] < spec.burst_seconds)
        return base(t) * np.where(inside, spec.burst_factor, 1.0)

    return bursty, spec.burst_factor


def generate(spec: TraceSpec, pool: Sequence[str]) -> Trace:
    """A seeded trace over `spec.seconds` with `spec.requests` arrivals expected."""
    if not pool:
        raise ValueError("no prompts to draw from")
    rng = np.random.default_rng(spec.seed)
    shape, top = _shape(spec, rng)
    grid = np.linspace(0, spec.seconds, 20_001)
    mean = float(shape(grid).mean()) or 1.0
    scale = spec.requests / spec.seconds / mean  # requests per second per unit of shape
    peak = top * scale
    candidates = np.cumsum(rng.exponential(1 / peak, int(peak * spec.seconds * 1.1) + 100))
    while candidates[-1] < spec.seconds:  # rare: the draw fell short of the horizon
        more = rng.exponential(1 / peak, int(peak * spec.seconds * 0.1) + 100)
        candidates = np.concatenate([candidates, candidates[-1] + np.cumsum(more)])
    candidates = candidates[candidates < spec.seconds]
    keep = rng.uniform(0, 1, len(candidates)) < shape(candidates) * scale / peak
    times = candidates[keep]
    picks = rng.integers(0, len(pool), len(times))
    return Trace(times, tuple(pool[i] for i in picks), spec.shape)


def rate_series(trace: Trace, bin_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin starts and the arrival rate (requests per second) in each bin."""
    edges = np.arange(0, max(trace.seconds, bin_seconds) + bin_seconds, bin_seconds)
    counts, _ = np.histogram(trace.times, edges)
    return edges[:-1], counts / bin_seconds


def write_trace(trace: Trace, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "prompt_id"])
        out.writerows((f"{t:.3f}", p) for t, p in zip(trace.times, trace.prompts, strict=True))


def read_trace(path: Path, known: set[str] | None = None) -> Trace:
    """A `timestamp,prompt_id` CSV (sorted on reading; timestamps shifted to start at 0 when
    they look like epoch seconds). Unknown prompt ids are refused, all listed at once."""
    times, prompts = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        if rows.fieldnames is None or not {"timestamp", "prompt_id"} <= set(rows.fieldnames):
            raise ValueError(f"{path}: want a CSV header 'timestamp,prompt_id'")
        for n, row in enumerate(rows, start=2):
            try:
                times.append(float(row["timestamp"]))
            except ValueError:
                raise ValueError(f"{path}:{n}: timestamp {row['timestamp']!r} is not a "
                                 "number") from None
            prompts.append(row["prompt_id"])
    if known is not None:
        unknown = sorted({p for p in prompts if p not in known})
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} prompt ids are not held-out rows with "
                             f"real outcomes, e.g. {unknown[:3]}")
    order = np.argsort(np.array(times), kind="stable")
    arr = np.array(times, dtype=float)[order]
    if len(arr) and arr[0] > 1e8:  # epoch seconds
        arr = arr - arr[0]
    return Trace(arr, tuple(prompts[i] for i in order), path.stem)
