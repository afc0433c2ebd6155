"""The classifier function's `handle` for each router mode, and its readiness when the model
cannot load."""

from __future__ import annotations

import json
import re

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent

from tests.conftest import VALUES, call
from tests.functions.test_event_functions import Served

MODES = ("keyword", "semantic", "hybrid")


async def _classify(fn, prompt: str, router: str):
    event = CloudEvent({"type": "io.pickspin.prompt.received", "source": "/tests",
                        "datacontenttype": "application/json"},
                       {"request_id": "r1", "prompt": prompt, "route": {"router": router}})
    message = to_binary_event(event)
    # through the cloudevent middleware, as func serves it
    return await call(Served(fn), "POST", "/", dict(message.headers), message.body)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prompt", ["Derive the Euler-Lagrange equation step by step.",
                                    "", "\x00\xff" * 60_000])
async def test_handle_returns_a_valid_prompt_classified_event(start_function, semantic_router,
                                                              mode, prompt):
    reply = await _classify(start_function("classifier"), prompt, mode)
    assert reply.status == 200, reply.body
    answer = from_http_event(HTTPMessage(headers=reply.headers, body=reply.body))
    assert answer.get_type() == "io.pickspin.prompt.classified"
    data = answer.get_data()
    assert data["router"] == mode
    assert data["complexity"] in ("low", "medium", "high")
    assert sum(data["probabilities"].values()) == pytest.approx(1.0)
    assert data["truncated"] is (len(prompt) > 100_000)
    if mode != "keyword":  # the encoder router's success estimates travel with the event:
        # per tier, and per model with its own head
        assert {"small", "medium", "large"} <= set(data["success"])
        assert set(data["success"]) <= {"small", "medium", "large", "qwen-3-235b",
                                        "gemma-3-270m"}
    # only the hybrid's short-prompt rule settles a class: the short "Derive …" request
    assert data["settled"] is (mode == "hybrid" and prompt.startswith("Derive"))


async def test_the_hybrids_settled_class_travels_to_the_selector(start_function):
    reply = await _classify(start_function("classifier"), "hi", "hybrid")
    data = from_http_event(HTTPMessage(headers=reply.headers, body=reply.body)).get_data()
    assert (data["complexity"], data["settled"]) == ("low", True)


def _values_with(tmp_path, mode: str, model: str):
    text = VALUES.read_text()
    text = re.sub(r"(\n\s+mode: )\w+", rf"\g<1>{mode}", text, count=1)
    text = re.sub(r"(semanticModel: ).*", rf"\g<1>{model}", text, count=1)
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return path


def test_missing_model_makes_a_semantic_classifier_unready_and_keyword_still_serves(
        start_function, tmp_path):
    values = _values_with(tmp_path, "semantic", str(tmp_path / "absent"))
    fn = start_function("classifier", {"PICKSPIN_CONFIG": str(values)})
    ready, message = fn.ready()
    assert ready is False
    assert "lacks model.onnx" in message


async def test_corrupt_model_leaves_keyword_routing_serving(start_function, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (folder / name).write_bytes(b"\xde\xad\xbe\xef")
    values = _values_with(tmp_path, "keyword", str(folder))
    fn = start_function("classifier", {"PICKSPIN_CONFIG": str(values)})
    ready, message = fn.ready()
    assert ready is True and "semantic" in message
    reply = await _classify(fn, "Define entropy", "keyword")
    assert reply.status == 200
    refused = await _classify(fn, "Define entropy", "semantic")
    assert refused.status == 400
    assert "unavailable" in json.dumps(refused.json())
