"""The trace generator is seeded and documented; trace files round-trip."""

from pathlib import Path

import numpy as np
import pytest

from pickspin.sim.trace import TraceSpec, day_curve, generate, rate_series, read_trace, write_trace

POOL = [f"p{i}" for i in range(50)]


def test_a_seed_gives_the_same_trace_and_another_seed_another():
    spec = TraceSpec("bursty", 5000, 86_400, seed=3)
    a, b = generate(spec, POOL), generate(spec, POOL)
    assert np.array_equal(a.times, b.times) and a.prompts == b.prompts
    c = generate(TraceSpec("bursty", 5000, 86_400, seed=4), POOL)
    assert len(c) != len(a) or not np.array_equal(c.times, a.times)


@pytest.mark.parametrize("shape", ["steady", "diurnal", "bursty"])
def test_the_expected_number_of_requests_arrives_in_order(shape):
    trace = generate(TraceSpec(shape, 20_000, 86_400, seed=1), POOL)
    # Poisson counts: 4 standard deviations (bursts add their own variance)
    assert abs(len(trace) - 20_000) < (4 if shape != "bursty" else 25) * 20_000**0.5
    assert np.all(np.diff(trace.times) >= 0) and trace.times[-1] < 86_400
    assert set(trace.prompts) <= set(POOL)


def test_the_diurnal_day_peaks_in_the_afternoon_and_is_near_idle_at_night():
    trace = generate(TraceSpec("diurnal", 50_000, 86_400, seed=2, floor=0.03), POOL)
    _, rate = rate_series(trace, 3600)
    assert np.argmax(rate) in (13, 14)
    night = rate[2]
    assert night < 0.1 * rate.max()
    assert day_curve(np.array([14 * 3600.0]), 0.03, 14.0)[0] == pytest.approx(1.0)
    assert day_curve(np.array([2 * 3600.0]), 0.03, 14.0)[0] == pytest.approx(0.03)


def test_bursts_raise_the_busiest_minute_over_the_plain_day():
    plain = generate(TraceSpec("diurnal", 20_000, 86_400, seed=5), POOL)
    bursty = generate(TraceSpec("bursty", 20_000, 86_400, seed=5, bursts_per_hour=1,
                                burst_factor=8), POOL)
    assert rate_series(bursty, 60)[1].max() > 2 * rate_series(plain, 60)[1].max()


def test_rate_points_are_followed():
    trace = generate(TraceSpec("points", 3000, 1200, seed=1, points="0:0,600:0,601:5,1200:5"),
                     POOL)
    assert trace.times.min() >= 599


def test_a_trace_file_round_trips_and_unknown_prompts_are_refused(tmp_path: Path):
    trace = generate(TraceSpec("steady", 200, 600, seed=9), POOL)
    path = tmp_path / "t.csv"
    write_trace(trace, path)
    back = read_trace(path, set(POOL))
    assert back.prompts == trace.prompts
    assert np.allclose(back.times, trace.times, atol=1e-3)
    with pytest.raises(ValueError, match="not held-out rows"):
        read_trace(path, {"p1"})
    (tmp_path / "bad.csv").write_text("when,what\n1,p1\n")
    with pytest.raises(ValueError, match="timestamp,prompt_id"):
        read_trace(tmp_path / "bad.csv")
