"""values.schema.json describes `global.pickspin` with exactly the keys pickspin.core.settings
accepts, so a key the functions would reject fails at `helm install` already."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chart_helpers import REPO
from pydantic import BaseModel

from pickspin.core import profiles as p
from pickspin.core import settings as s

SCHEMA = json.loads((REPO / "charts" / "pickspin" / "values.schema.json").read_text())
PICKSPIN = SCHEMA["properties"]["global"]["properties"]["pickspin"]


def aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def node(path: str) -> dict[str, Any]:
    current: dict[str, Any] = PICKSPIN
    for part in path.split(".") if path else []:
        if part == "[]":
            current = current["items"]
        elif part == "{}":
            current = current["additionalProperties"]
        else:
            current = current["properties"][part]
    return current


@pytest.mark.parametrize("path, model", [
    ("", s.Settings), ("routing", s.Routing), ("routing.keywords", s.Keywords),
    ("profiles.{}", p.Profile), ("profiles.{}.weights", p.Weights),
    ("profiles.{}.scaling", p.Scaling), ("profiles.{}.scaling.schedule.[]", p.ScheduledPool),
    ("models.[]", s.Model), ("backends.[]", s.Backend),
    ("services.[]", s.Service), ("services.[].priors", s.Priors),
    ("services.[].emulation", s.Emulation),
], ids=lambda x: x if isinstance(x, str) else "")
def test_schema_keys_are_the_settings_keys(path: str, model: type[BaseModel]) -> None:
    schema = node(path)
    assert set(schema["properties"]) == aliases(model)
    assert schema["additionalProperties"] is False
    required = {f.alias or n for n, f in model.model_fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required
