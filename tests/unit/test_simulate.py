import math

from pickspin.policy import scaling_for
from pickspin.simulate import gpu_hours, main, parse_rate, rate_at, run

SERVICE = "qwen-3-235b-vllm"


def test_rate_points_are_linear_between_and_flat_outside():
    points = parse_rate("100:2,0:0,200:2")
    assert points[0] == (0.0, 0.0)
    assert rate_at(points, 50) == 1.0
    assert rate_at(points, 500) == 2.0


def test_a_burst_scales_by_littles_law_and_returns_to_zero_after_the_cooldown(settings):
    params = scaling_for(settings, SERVICE, polling_interval=15)
    latency = settings.service(SERVICE).priors.latency_seconds
    steps = run(settings, SERVICE, parse_rate("0:0,60:30,600:30,660:0"), 1800, polling=15)
    busy = [s for s in steps if 120 <= s.t <= 600]
    expected = min(params.max_replicas, math.ceil(30 * latency / params.threshold))
    assert max(s.replicas for s in busy) == expected
    assert steps[0].replicas == params.min_replicas == 0
    quiet_since = 660 + 60  # the last active poll, then the cooldown
    after = [s for s in steps if s.t >= quiet_since + params.cooldown_seconds + 15]
    assert after and all(s.replicas == 0 for s in after)
    assert gpu_hours(settings, SERVICE, steps, 15) < params.max_replicas * 4 * 1815 / 3600


def test_cli_writes_markdown_and_json_and_refuses_bad_input(tmp_path, capsys):
    assert main(["--service", SERVICE, "--rate", "0:1", "--minutes", "2",
                 "--out", str(tmp_path)]) == 0
    assert (tmp_path / "simulate.md").read_text().startswith("# Simulated scaling")
    assert '"steps"' in (tmp_path / "simulate.json").read_text()
    assert main(["--service", "nope", "--rate", "0:1", "--out", str(tmp_path)]) == 2
    assert main(["--service", SERVICE, "--rate", "soon", "--out", str(tmp_path)]) == 2
    assert "not 'seconds:requests-per-second'" in capsys.readouterr().out
