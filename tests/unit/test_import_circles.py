"""No import circles in the pickspin library: module A importing B (at the top or lazily inside
a function) while B, directly or through others, imports A. A circle is what a lazy import
hides; this test reads every `import` statement, so it sees them all."""

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
    edges["pickspin.settings"] = {*edges["pickspin.settings"], "pickspin.routers"}
    assert ["pickspin.routers", "pickspin.settings"] in circles(edges)
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from pickspin.semantic.registry import build_registry\n")
    assert "pickspin.semantic.registry" in imports(source, set(edges))
