"""pickspin.core.warmpool: a profile's warm pool per tier sits on the tier's designated services,
the ones Eq. 2 prefers among the tier's warm services; `warmPoolScope: service` keeps the
old pool on every service."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pickspin.core.events import ServiceStats
from pickspin.core.selection import select
from pickspin.core.settings import TIERS, Settings
from pickspin.core.warmpool import warm_order, warm_pools

VALUES = Path(__file__).resolve().parents[2] / "charts" / "pickspin" / "values.yaml"
SETTINGS = Settings.load(VALUES)


def with_scaling(settings: Settings, profile: str, **update: object) -> Settings:
    prof = settings.profile(profile)
    changed = prof.model_copy(update={"scaling": prof.scaling.model_copy(update=update)})
    return settings.model_copy(update={"profiles": {**settings.profiles, profile: changed}})


def test_the_default_profile_keeps_one_small_service_warm() -> None:
    pools = warm_pools(SETTINGS, "balanced")
    assert {n: k for n, k in pools.items() if k} == {"gemma-3-27b-trtllm": 1}
    assert set(pools) == {s.name for s in SETTINGS.services}


@pytest.mark.parametrize("profile", sorted(SETTINGS.profiles))
def test_each_tier_keeps_its_pool_once_on_a_prefix_of_its_order(profile: str) -> None:
    pools = warm_pools(SETTINGS, profile)
    scaling = SETTINGS.profile(profile).scaling
    for tier in TIERS:
        order = warm_order(SETTINGS, tier)
        kept = [pools[s.name] for s in order]
        assert sum(kept) == min(scaling.warm_pool.get(tier, 0),  # type: ignore[call-overload]
                                sum(s.max_replicas for s in order))
        assert kept == sorted(kept, reverse=True)
        assert all(k <= s.max_replicas for k, s in zip(kept, order, strict=True))


def test_a_pool_beyond_a_budget_spills_to_the_next_service_of_the_tier() -> None:
    settings = with_scaling(SETTINGS, "balanced", warm_pool={"large": 2})
    pools = warm_pools(settings, "balanced")
    # deepseek-r1 has a budget of one replica per backend
    assert [n for n, k in pools.items() if k] == ["deepseek-r1-vllm", "deepseek-r1-trtllm"]
    assert pools["deepseek-r1-trtllm"] == pools["deepseek-r1-vllm"] == 1


def test_service_scope_keeps_the_pool_on_every_service_of_the_tier() -> None:
    settings = with_scaling(SETTINGS, "speed", warm_pool_scope="service")
    pools = warm_pools(settings, "speed")
    for svc in SETTINGS.services:
        want = {"small": 2, "medium": 1, "large": 1}[SETTINGS.model(svc.model).tier]
        assert pools[svc.name] == min(want, svc.max_replicas)


@pytest.mark.parametrize("profile", sorted(SETTINGS.profiles))
def test_selection_prefers_the_designated_backend_of_each_model(profile: str) -> None:
    """With every service warm, Eq. 2 ranks a model's designated backend (the fastest
    prior) above the model's other backends, under every profile."""
    warm = {s.name: ServiceStats(replicas=1, ready_replicas=1) for s in SETTINGS.services}
    for tier in TIERS:
        order = warm_order(SETTINGS, tier)
        for model in {s.model for s in order}:
            first = next(s for s in order if s.model == model)
            for low, high in itertools.product((0.2, 0.5, 0.9), repeat=2):
                d = select(SETTINGS, warm, {"low": low, "medium": 1 - low, "high": 0.0},
                           profile=profile, model=model,
                           success={"small": low, "medium": high, "large": high})
                assert d.chosen.service == first.name


def test_the_designated_model_has_the_best_success_estimate_of_its_tier() -> None:
    """R̂ with a success router: the tier's first model has the largest abilityOffset, so
    the largest R̂ of the tier for any prompt."""
    from pickspin.core.scoring import relevance

    for tier in TIERS:
        order = warm_order(SETTINGS, tier)
        first = SETTINGS.model(order[0].model)
        for p in (0.05, 0.3, 0.6, 0.95):
            success = {t: p for t in TIERS}
            assert all(relevance({}, first, success) >=
                       relevance({}, SETTINGS.model(s.model), success) for s in order)


def test_the_order_changes_with_the_matrix() -> None:
    """A faster prior moves a backend to the front of its tier (the test fails when the
    order ignores the matrix)."""
    services = tuple(
        s.model_copy(update={"priors": s.priors.model_copy(update={"latency_seconds": 1.0})})
        if s.name == "gemma-3-27b-tgi" else s for s in SETTINGS.services)
    settings = SETTINGS.model_copy(update={"services": services})
    assert warm_order(settings, "small")[0].name == "gemma-3-27b-tgi"
    assert warm_pools(settings, "speed")["gemma-3-27b-tgi"] == 2
