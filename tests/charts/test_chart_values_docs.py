"""Every value of every chart carries a helm-docs `# --` comment, on itself or on the
enclosing key that documents it as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chart_helpers import REPO

VALUES_FILES = [REPO / "charts" / "pickspin" / "values.yaml", REPO / "knative" / "values.yaml",
                REPO / "keda" / "values.yaml"]


def documented(lines: list[str], line: int) -> bool:
    """Is there a `# --` comment in the comment block right above `line`?"""
    i = line - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        if lines[i].strip().startswith("# --"):
            return True
        i -= 1
    return False


def undocumented(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    missing: list[str] = []

    def walk(node: yaml.Node, where: str, covered: bool) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{where}.{key.value}" if where else key.value
                here = covered or documented(lines, key.start_mark.line)
                is_leaf = not isinstance(value, yaml.MappingNode) or not value.value
                if is_leaf and not here:
                    missing.append(f"{path.name}:{key.start_mark.line + 1} {name}")
                walk(value, name, here)

    walk(yaml.compose(path.read_text(encoding="utf-8")), "", False)
    return missing


@pytest.mark.parametrize("path", VALUES_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_value_has_a_helm_docs_comment(path: Path) -> None:
    assert undocumented(path) == []
