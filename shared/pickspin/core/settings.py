"""Typed, validated settings: one YAML file is the source for the chart, the local run and
the functions.

The file is the umbrella chart's values file (``charts/pickspin/values.yaml``); the
functions' part sits under ``global.pickspin`` so that every subchart sees it. A file that
holds only that part (the ConfigMap the chart renders) loads the same way.

>>> settings = Settings.load("charts/pickspin/values.yaml")
>>> settings.profile("balanced").weights.relevance
0.5
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, ValidationError, model_validator

from pickspin.core.configmodel import ConfigModel as _Model
from pickspin.core.errors import ConfigError
from pickspin.core.profiles import Profile

COMPLEXITY_CLASSES: tuple[str, ...] = ("low", "medium", "high")
TIERS: tuple[str, ...] = ("small", "medium", "large")
CONFIG_ENV = "PICKSPIN_CONFIG"
DEFAULT_VALUES = Path(__file__).resolve().parents[3] / "charts" / "pickspin" / "values.yaml"


class RouterName(StrEnum):
    """Named complexity routers (the `x-pickspin-router` header takes these)."""

    KEYWORD = "keyword"
    SEMANTIC = "semantic"
    HYBRID = "hybrid"


class StrategyName(StrEnum):
    """Named selection strategies (paper Algorithm 2 and two baselines)."""

    RANDOM = "random"
    LATENCY = "latency"
    MULTI_OBJECTIVE = "multi-objective"


class BackendKind(StrEnum):
    VLLM = "vllm"
    TGI = "tgi"
    TRTLLM = "trtllm"
    LLAMACPP = "llamacpp"


class Keywords(_Model):
    low: tuple[str, ...]
    high: tuple[str, ...]
    # -- greetings and chit-chat, matched as whole words, only by the short-prompt rule
    #    (`Routing.settle_words`): a short prompt of these settles as low
    chat: tuple[str, ...] = ()


class TradeDown(_Model):
    """How far a profile may trade answer quality for latency or cost (the selection floor).

    A prompt of class k (low 0, medium 1, high 2) goes only to a tier ≥ k − `tiers`
    (small 0, medium 1, large 2), and only to a model whose R̂ is at most `relevance` below
    the best R̂ among the healthy candidates, while any healthy candidate satisfies both.
    """

    tiers: int = Field(default=1, ge=0, le=2)
    relevance: float = Field(default=0.15, ge=0, le=1)
    # -- for a prompt whose class the hybrid's short-prompt rule settled (`Routing.settle_words`):
    #    the tier rule uses this instead of `tiers`, and the relevance bound is not applied
    #    (the class is known; R̂ on a short hand-written prompt is what the router never saw);
    #    None: the profile's usual floor
    settled_tiers: int | None = Field(default=None, ge=0, le=2)


def _default_trade_down() -> dict[str, TradeDown]:
    return {"quality": TradeDown(tiers=1, relevance=0.05),
            "balanced": TradeDown(tiers=1, relevance=0.15),
            "cost": TradeDown(tiers=2, relevance=0.30),
            "speed": TradeDown(tiers=2, relevance=0.30)}


class Routing(_Model):
    mode: RouterName = RouterName.KEYWORD
    strategy: StrategyName = StrategyName.MULTI_OBJECTIVE
    # -- hybrid: the keyword verdict stands when its top probability reaches this
    hybrid_threshold: float = Field(default=0.7, ge=0, le=1)
    # -- path of the ONNX classifier folder (relative paths are taken from the package)
    semantic_model: str = "models/complexity-distilbert"
    # -- onnxruntime intra-op threads of the semantic encoder (per classifier process)
    semantic_threads: int = Field(default=2, ge=1, le=64)
    keywords: Keywords
    # -- per profile: how far selection may trade quality down (a profile not named: no floor)
    trade_down: dict[str, TradeDown] = Field(default_factory=_default_trade_down)
    # -- hybrid's short-prompt rule: a prompt of at most this many words whose keywords are all
    #    on one side (low or chat words: low; high words: high) settles its class (0: off)
    settle_words: int = Field(default=0, ge=0, le=100)

    def trade_down_for(self, profile: str) -> TradeDown:
        return self.trade_down.get(profile, TradeDown(tiers=2, relevance=1.0))


class Model(_Model):
    name: str = Field(min_length=1)
    tier: Literal["small", "medium", "large"]
    # -- Hugging Face id of the weights a real backend loads
    hf_id: str = ""
    # -- file to load from the weights repo, for single-file formats (GGUF for llama.cpp)
    file: str = ""
    # -- quality(L, k): expected answer quality of this model per complexity class, in [0, 1]
    quality: dict[Literal["low", "medium", "high"], float]
    # -- logit shift of this model's success chance against its tier's stand-in (0: the
    # -- stand-in's own); R̂ = σ(logit P(tier succeeds) + abilityOffset) with a success router
    ability_offset: float = Field(default=0.0, ge=-10, le=10)

    @model_validator(mode="after")
    def _quality_complete(self) -> Model:
        problems = []
        missing = [k for k in COMPLEXITY_CLASSES if k not in self.quality]
        if missing:
            problems.append(f"quality lacks classes {missing}")
        bad = {k: v for k, v in self.quality.items() if not 0 <= v <= 1}
        if bad:
            problems.append(f"quality values must lie in [0, 1], got {bad}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Backend(_Model):
    name: str = Field(min_length=1)
    kind: BackendKind
    image: str = ""
    port: int = Field(default=8000, gt=0, lt=65536)
    metrics_path: str = "/metrics"
    health_path: str = "/health"


class Priors(_Model):
    """Latency assumed for a service until telemetry has measured it."""

    latency_seconds: float = Field(gt=0)
    ttft_seconds: float = Field(gt=0)


class Emulation(_Model):
    """How the local emulated backend behaves (ignored in a cluster)."""

    ttft_ms_median: float = Field(gt=0)
    ttft_ms_p99: float = Field(gt=0)
    tokens_per_second: float = Field(gt=0)
    max_concurrency: int = Field(gt=0)
    cold_start_seconds: float = Field(default=0, ge=0)
    error_rate: float = Field(default=0, ge=0, le=1)
    # -- fault injection: the process kills itself with SIGSEGV after streaming this many
    #    tokens of an answer (0: before the first), as a native engine crash would
    crash_after_tokens: int | None = Field(default=None, ge=0)
    source: str = ""

    @model_validator(mode="after")
    def _p99_above_median(self) -> Emulation:
        if self.ttft_ms_p99 < self.ttft_ms_median:
            raise ValueError("ttftMsP99 must be >= ttftMsMedian")
        return self


class Service(_Model):
    """One model × backend pair, S(x, y) in the paper."""

    model: str
    backend: str
    endpoint: str = ""
    cost_per_gpu_hour: float = Field(ge=0)
    gpus: int = Field(gt=0)
    # -- requests one replica serves at once
    concurrency: int = Field(gt=0)
    # -- seconds from zero replicas to ready
    cold_start_seconds: float = Field(ge=0)
    # -- most replicas (the GPU budget)
    max_replicas: int = Field(default=1, gt=0)
    priors: Priors
    emulation: Emulation | None = None
    # -- set by the local run for a service it emulates (no model weights behind it)
    emulated: bool = False

    @property
    def name(self) -> str:
        return f"{self.model}-{self.backend}"


class Settings(_Model):
    default_profile: str = "balanced"
    routing: Routing
    profiles: dict[str, Profile]
    models: tuple[Model, ...] = Field(min_length=1)
    backends: tuple[Backend, ...] = Field(min_length=1)
    services: tuple[Service, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        problems: list[str] = []
        if self.default_profile not in self.profiles:
            problems.append(
                f"defaultProfile: unknown profile {self.default_profile!r} "
                f"(have {sorted(self.profiles)})"
            )
        models = {m.name for m in self.models}
        backends = {b.name for b in self.backends}
        seen: set[str] = set()
        for i, svc in enumerate(self.services):
            if svc.model not in models:
                problems.append(f"services[{i}].model: unknown model {svc.model!r}")
            if svc.backend not in backends:
                problems.append(f"services[{i}].backend: unknown backend {svc.backend!r}")
            if svc.name in seen:
                problems.append(f"services[{i}]: duplicate service {svc.name!r}")
            seen.add(svc.name)
        for kind, names in (("models", [m.name for m in self.models]),
                            ("backends", [b.name for b in self.backends])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                problems.append(f"{kind}: duplicate names {dupes}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ---- look-ups -------------------------------------------------------------------
    def profile(self, name: str | None = None) -> Profile:
        return self.profiles[name or self.default_profile]

    def model(self, name: str) -> Model:
        # an index built once per models tuple (selection asks per service and request); a
        # copy with other models (model_copy keeps __dict__) builds its own
        index = self.__dict__.get("_model_index")
        if index is None or index[0] is not self.models:
            index = (self.models, {m.name: m for m in self.models})
            self.__dict__["_model_index"] = index
        found = index[1].get(name)
        return found if found is not None else _named(self.models, name, "model")

    def backend(self, name: str) -> Backend:
        return _named(self.backends, name, "backend")

    def service(self, name: str) -> Service:
        return _named(self.services, name, "service")

    def with_endpoints(self, endpoints: dict[str, str]) -> Settings:
        """A copy whose services point at the given endpoints (by service name)."""
        services = tuple(
            svc.model_copy(update={"endpoint": endpoints.get(svc.name, svc.endpoint)})
            for svc in self.services
        )
        return self.model_copy(update={"services": services})

    # ---- loading --------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> Settings:
        """Validate a mapping, reporting every problem at once."""
        if isinstance(data, dict) and isinstance(data.get("global"), dict):
            data = data["global"].get("pickspin", data)
        if not isinstance(data, dict):
            raise ConfigError(source, ["the file must hold a mapping"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(source, _describe(exc)) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Settings:
        """Load from `path`, else $PICKSPIN_CONFIG, else the chart's values file."""
        where = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_VALUES)
        try:
            text = where.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(where), [f"cannot read: {exc.strerror}"]) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(str(where), [f"not valid YAML: {exc}"]) from None
        return cls.from_mapping(data, str(where))

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


Named = TypeVar("Named", Model, Backend, Service)


def _named(items: tuple[Named, ...], name: str, kind: str) -> Named:
    """The item called `name`, or a KeyError that lists the names there are."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"unknown {kind} {name!r} (have {sorted(i.name for i in items)})")


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        for part in message.split("; "):
            problems.append(f"{where}: {part}" if where != "(top level)" else part)
    return problems
