"""What the local run starts for the functions: the gateway's replicas and their shared entry
socket, sized from the knative chart's values; every function served by
`pickspin.local.serve` with the run's socket options."""

from __future__ import annotations

from pathlib import Path

from pickspin.local.plan import GatewayScale, function_processes, function_specs
from pickspin.local.serve import Listening


def gateway_values(**gateway: object) -> dict[str, object]:
    return {"knative": {"functions": {"gateway": gateway}}}


def test_the_chart_defaults_give_one_gateway_answering_256_at_once():
    scale = GatewayScale.from_values({}, env={})
    # knative/values.yaml: minScale 1, containerConcurrency 256
    assert scale == GatewayScale(replicas=1, max_inflight=256)
    assert scale.backlog == 256 and scale.names == ("gateway",)


def test_min_scale_and_container_concurrency_set_replicas_and_backlog():
    scale = GatewayScale.from_values(gateway_values(minScale=2, containerConcurrency=100), env={})
    assert scale == GatewayScale(replicas=2, max_inflight=100)
    assert scale.backlog == 200  # every request both may answer at once, as new connections
    assert scale.names == ("gateway", "gateway-2")


def test_an_explicit_max_inflight_wins_and_min_scale_zero_still_runs_one():
    scale = GatewayScale.from_values(gateway_values(minScale=0),
                                     env={"PICKSPIN_MAX_INFLIGHT": "32"})
    assert scale == GatewayScale(replicas=1, max_inflight=32)
    assert scale.backlog == 100  # never below hypercorn's own default


def test_gateway_replicas_share_the_entry_socket_and_keep_ports_of_their_own():
    scale = GatewayScale(replicas=2, max_inflight=64)
    ports = {name: 9000 + i for i, (_, name) in enumerate(function_processes(scale))}
    specs = {s.name: s for s in function_specs(Path("/run/pickspin.yaml"), ports, scale=scale,
                                               entry_fd=7)}
    assert set(specs) == {"classifier", "selector", "telemetry", "gateway", "gateway-2", "ping"}
    for name in ("gateway", "gateway-2"):
        spec = specs[name]
        assert spec.pass_fds == (7,) and spec.port == ports[name]
        assert spec.env["LISTEN_ADDRESS"] == f"127.0.0.1:{ports[name]}"  # health, /metrics
        assert Listening.from_env(spec.env).fds == (7,)
        assert spec.env["PICKSPIN_MAX_INFLIGHT"] == "64" and spec.drain_signal == "SIGUSR1"
    for name in ("classifier", "selector", "telemetry"):
        assert specs[name].pass_fds == () and Listening.from_env(specs[name].env).fds == ()
    for name in ("classifier", "selector", "telemetry", "gateway", "gateway-2"):
        assert specs[name].argv[1:3] == ["-m", "pickspin.local.serve"]
        listening = Listening.from_env(specs[name].env)
        assert listening.backlog == 128 and listening.keep_alive > 5.0  # past httpx's 5 s
