"""Every router the settings allow, in one `RouterRegistry` (`build_registry`): the keyword
rules, and the semantic and hybrid routers or why they cannot load — a missing or corrupt
model leaves both recorded as unavailable with the reason, and keyword routing keeps serving.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pickspin.core.routers import KeywordRouter, Router, RouterRegistry
from pickspin.core.settings import RouterName, Settings
from pickspin.semantic.hybrid import HybridRouter
from pickspin.semantic.runtime import ModelLoadError, SemanticRouter, resolve_model_dir

Loader = Callable[[Path, int], Router]


def load_semantic(folder: Path, threads: int = 2) -> Router:
    """The folder's router: encoder + success heads (`success.FORMAT`), else the older
    DistilBERT classifier; `threads` = onnxruntime's intra-op threads."""
    from pickspin.semantic.success import SuccessRouter, is_encoder_heads

    if is_encoder_heads(folder):
        return SuccessRouter.load(folder, threads)
    return SemanticRouter.load(folder, threads)


def add_semantic_routers(registry: RouterRegistry, settings: Settings, keyword: Router,
                         loader: Loader = load_semantic) -> None:
    folder = resolve_model_dir(settings.routing.semantic_model)
    try:
        semantic = loader(folder, settings.routing.semantic_threads)
    except (ModelLoadError, OSError, ImportError) as exc:
        reason = f"complexity model not loaded: {exc}"
        registry.add_failed(RouterName.SEMANTIC.value, reason)
        registry.add_failed(RouterName.HYBRID.value, f"needs the semantic router: {reason}")
        return
    registry.add(semantic)
    registry.add(HybridRouter(keyword, semantic, settings.routing.hybrid_threshold,
                              settings.routing.settle_words))


def build_registry(settings: Settings) -> RouterRegistry:
    """Every router the settings allow; one that cannot load is recorded with the reason."""
    registry = RouterRegistry()
    keyword = KeywordRouter(settings.routing.keywords)
    registry.add(keyword)
    add_semantic_routers(registry, settings, keyword)
    return registry
