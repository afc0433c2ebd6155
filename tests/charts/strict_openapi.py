"""Validate rendered objects against upstream CRD schemas the way `kubectl --validate=strict`
does: an unknown or misspelled field is an error.

The `../shared/schemas/openapi/*.openapi.json` files are CRD `openAPIV3Schema`s. A plain JSON
Schema validator lets unknown fields through; the API server's structural schema does not
(it prunes or, with strict field validation, rejects them). `strictify` closes every object
that lists its properties, unless it carries `x-kubernetes-preserve-unknown-fields`, and
turns `x-kubernetes-int-or-string` into "integer or string".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

# metadata is validated by the API server as ObjectMeta, not by the CRD schema.
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


def strictify(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in which unknown fields fail (see the module docstring)."""
    out: dict[str, Any] = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in schema:
        out["properties"] = {k: strictify(v) for k, v in schema["properties"].items()}
        if not preserve and "additionalProperties" not in schema:
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), Mapping):
        out["additionalProperties"] = strictify(schema["additionalProperties"])
    if isinstance(schema.get("items"), Mapping):
        out["items"] = strictify(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [strictify(s) for s in schema[key]]
    if "not" in schema:
        out["not"] = strictify(schema["not"])
    return out


@dataclass(frozen=True)
class CrdSchemas:
    """The strict schemas found in a folder, by (apiVersion, kind)."""

    schemas: Mapping[tuple[str, str], dict[str, Any]]

    @classmethod
    def load(cls, folder: Path) -> CrdSchemas:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(folder.glob("*.openapi.json")):
            # <source>-<tag>_<group>_<version>_<Kind>.openapi.json
            _, group, version, kind = path.name.removesuffix(".openapi.json").split("_")
            schema = strictify(json.loads(path.read_text(encoding="utf-8")))
            schema["properties"]["metadata"] = OBJECT_META
            schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
            schema["properties"]["kind"] = {"const": kind}
            schema.setdefault("required", [])
            schema["required"] = sorted({*schema["required"], "apiVersion", "kind", "metadata"})
            found[(f"{group}/{version}", kind)] = schema
        return cls(found)

    def covers(self, obj: Mapping[str, Any]) -> bool:
        return (obj.get("apiVersion"), obj.get("kind")) in self.schemas

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        """Every schema violation of `obj`, as `path: message`."""
        schema = self.schemas[(obj["apiVersion"], obj["kind"])]
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        ]
