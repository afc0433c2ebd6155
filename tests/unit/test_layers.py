"""The library's structure, read from its imports: no import circle (module A importing B, at
the top or lazily inside a function, while B, directly or through others, imports A), and no
arrow that runs against the layers. A circle is what a lazy import hides; this test reads every
`import` statement, so it sees them all."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "pickspin"


def module_name(path: Path) -> str:
    parts = ["pickspin", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The pickspin modules `path` imports (the deepest known module a name resolves to)."""
    found: set[str] = set()
    inside = path.is_relative_to(PACKAGE)  # relative imports resolve only inside it
    own = module_name(path) if inside else ""
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "pickspin":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    mods = set(files)
    return {m: imports(p, mods) - {m} for m, p in files.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_library_has_no_import_circle() -> None:
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_circle_finder_sees_a_lazy_circle(tmp_path: Path) -> None:
    # the check itself can fail: a circle closed by an import inside a function is found
    edges = graph()
    edges["pickspin.core.settings"] = {*edges["pickspin.core.settings"], "pickspin.core.routers"}
    assert ["pickspin.core.routers", "pickspin.core.settings"] in circles(edges)
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from pickspin.semantic.registry import build_registry\n")
    assert "pickspin.semantic.registry" in imports(source, set(edges))


# The layers, lowest first, and what each may import besides itself. An import that is not
# listed runs from a lower layer up to a higher one (or sideways between two that should not
# know each other): training is never imported by serving, the core imports nothing of
# pickspin, the function apps see neither the local run nor training.
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "adapters": {"core"},
    "semantic": {"core"},
    "emulator": {"core", "adapters"},
    "apps": {"core", "adapters", "semantic"},
    "functions": {"core", "adapters", "semantic", "apps"},
    "training": {"core", "semantic"},
    "local": {"core", "adapters", "emulator"},
    "sim": {"core", "adapters", "semantic", "training", "emulator", "local"},
    "cli": {"core", "local"},
}
FUNCTIONS = PACKAGE.parents[1] / "functions"


def layer_of(module: str) -> str:
    """`pickspin.core.events` is in `core`, `functions.gateway.func` in `functions`; the
    package's face (`pickspin/__init__.py`, which imports nothing) in none."""
    return module.split(".")[1] if module.startswith("pickspin.") else module.split(".")[0]


def arrows_against_the_layers(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for source, targets in edges.items():
        own = layer_of(source)
        if own == "pickspin":
            assert not targets, "the package's face imports nothing"
            continue
        for target in targets:
            other = layer_of(target)
            if other != own and other not in LAYERS[own]:
                wrong.append(f"{source} -> {target}")
    return sorted(wrong)


def function_edges(modules: set[str]) -> dict[str, set[str]]:
    """Each function's code (functions/<name>/function/*.py) as layer `functions`."""
    return {f"functions.{p.parent.parent.name}.{p.stem}": imports(p, modules)
            for p in FUNCTIONS.glob("*/function/*.py")}


def test_every_module_sits_in_a_layer() -> None:
    assert {layer_of(m) for m in graph()} - {"pickspin"} <= set(LAYERS)


def test_no_arrow_runs_against_the_layers() -> None:
    edges = graph()
    edges.update(function_edges(set(edges)))
    wrong = arrows_against_the_layers(edges)
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_the_layer_check_sees_an_arrow_up(tmp_path: Path) -> None:
    # the check itself can fail: the core reaching an adapter, serving reaching training,
    # and a function app reaching the local run are all reported
    edges = graph()
    edges["pickspin.core.policy"] = {*edges["pickspin.core.policy"], "pickspin.adapters.replicas"}
    edges["pickspin.semantic.success"] = {"pickspin.training.heads"}
    source = tmp_path / "func.py"
    source.write_text("from pickspin.local.stack import Stack\n")
    edges["functions.x.func"] = imports(source, set(graph()))
    assert arrows_against_the_layers(edges) == [
        "functions.x.func -> pickspin.local.stack",
        "pickspin.core.policy -> pickspin.adapters.replicas",
        "pickspin.semantic.success -> pickspin.training.heads",
    ]
