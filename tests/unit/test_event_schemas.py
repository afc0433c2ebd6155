import json

import pytest
from jsonschema import Draft202012Validator

from pickspin.core.events import DATA_MODELS, SCHEMA_DIR, json_schemas


@pytest.mark.parametrize("type_", [t.value for t in DATA_MODELS])
def test_published_schema_matches_the_data_model(type_):
    published = json.loads((SCHEMA_DIR / f"{type_}.json").read_text())
    published.pop("$id")
    assert published == json_schemas()[type_], "run `make schemas` and commit the result"
    Draft202012Validator.check_schema(published)


def test_a_published_schema_rejects_what_the_model_rejects():
    schema = json.loads((SCHEMA_DIR / "io.pickspin.prompt.received.json").read_text())
    validator = Draft202012Validator(schema)
    assert not list(validator.iter_errors({"request_id": "r", "prompt": "hi"}))
    assert list(validator.iter_errors({"request_id": "r"}))
    assert list(validator.iter_errors({"request_id": "r", "prompt": 3}))
