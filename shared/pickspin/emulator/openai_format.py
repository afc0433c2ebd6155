"""OpenAI request validation and response shapes for the emulated backends (pure).

Shapes follow the OpenAI API reference for `POST /v1/chat/completions` and
`POST /v1/completions` (objects `chat.completion`, `chat.completion.chunk`,
`text_completion`), as vLLM, TGI and trtllm-serve return them. Requests are read with the
gateway's models (`pickspin.core.openai_protocol`); bad input raises `InvalidRequest` (HTTP 400)
naming the parameter; it never reaches a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pickspin.core import openai_protocol as protocol
from pickspin.core.errors import InvalidRequest, ModelNotFound, PickspinError
from pickspin.emulator.profile import estimate_prompt_tokens


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"


class ModelLoading(PickspinError):
    """The emulated backend is still in its cold start (HTTP 503)."""

    status = 503
    type = "service_unavailable"
    code = "model_loading"


class EmulatedFailure(PickspinError):
    """An error injected on purpose (errorRate), before any token (HTTP 500)."""

    status = 500
    type = "server_error"
    code = "emulated_failure"


@dataclass(frozen=True)
class CompletionRequest:
    """The parts of a validated request the emulator acts on."""

    endpoint: Endpoint
    model: str
    stream: bool
    max_tokens: int
    length_limited: bool  # the caller set max_tokens, so the stop reason is "length"
    prompt_text: str
    include_usage: bool

    @property
    def prompt_tokens(self) -> int:
        return estimate_prompt_tokens(self.prompt_text)

    @property
    def finish_reason(self) -> str:
        return "length" if self.length_limited else "stop"


def parse_request(
    endpoint: Endpoint, body: bytes, *, served_model: str, default_max_tokens: int,
    max_model_len: int,
) -> CompletionRequest:
    """Validate a request body (types and ranges: `pickspin.core.openai_protocol`, as the gateway
    reads it); raise `InvalidRequest` (400) or `ModelNotFound` (404)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if endpoint is Endpoint.CHAT:
        chat = protocol.ChatRequest.read(data)
        request: protocol.ChatRequest | protocol.CompletionRequest = chat
        prompt_text = "\n".join(m.text for m in chat.messages if m.text)
        limit_key, limit = "max_completion_tokens", chat.max_completion_tokens
    else:
        completion = request = protocol.CompletionRequest.read(data)
        prompt = completion.prompt
        prompt_text = prompt if isinstance(prompt, str) else (
            "\n".join(prompt) if isinstance(prompt[0], str) else " ".join(map(str, prompt)))
        limit_key, limit = "max_tokens", None
    if limit is None:
        limit_key, limit = "max_tokens", request.max_tokens
    model = served_model if request.model is None else request.model
    if model != served_model:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    if limit is not None and limit > max_model_len:
        raise InvalidRequest(
            f"'{limit_key}' = {limit} exceeds the model's context length {max_model_len}",
            param=limit_key)
    return CompletionRequest(
        endpoint=endpoint,
        model=model,
        stream=bool(request.stream),
        max_tokens=limit if limit is not None else default_max_tokens,
        length_limited=limit is not None,
        prompt_text=prompt_text,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
    )


# ---- response shapes -------------------------------------------------------------------
def usage(req: CompletionRequest, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": req.prompt_tokens + completion_tokens,
    }


def _envelope(req: CompletionRequest, rid: str, created: int, fingerprint: str,
              chunk: bool) -> dict[str, Any]:
    if req.endpoint is Endpoint.CHAT:
        obj = "chat.completion.chunk" if chunk else "chat.completion"
    else:
        obj = "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": req.model,
            "system_fingerprint": fingerprint}


def stream_chunk(req: CompletionRequest, rid: str, created: int, fingerprint: str, *,
                 text: str | None, first: bool = False,
                 finish_reason: str | None = None) -> dict[str, Any]:
    """One SSE chunk: a token (`text`), or the closing chunk (`finish_reason`)."""
    body = _envelope(req, rid, created, fingerprint, chunk=True)
    if req.endpoint is Endpoint.CHAT:
        delta: dict[str, str] = {}
        if first:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice: dict[str, Any] = {"index": 0, "delta": delta}
    else:
        choice = {"index": 0, "text": text or ""}
    choice["logprobs"] = None
    choice["finish_reason"] = finish_reason
    body["choices"] = [choice]
    return body


def usage_chunk(req: CompletionRequest, rid: str, created: int, fingerprint: str,
                completion_tokens: int) -> dict[str, Any]:
    """The extra chunk sent when `stream_options.include_usage` is set."""
    body = _envelope(req, rid, created, fingerprint, chunk=True)
    body["choices"] = []
    body["usage"] = usage(req, completion_tokens)
    return body


def full_response(req: CompletionRequest, rid: str, created: int, fingerprint: str,
                  tokens: list[str]) -> dict[str, Any]:
    body = _envelope(req, rid, created, fingerprint, chunk=False)
    text = "".join(tokens)
    if req.endpoint is Endpoint.CHAT:
        choice: dict[str, Any] = {"index": 0,
                                  "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text}
    choice["logprobs"] = None
    choice["finish_reason"] = req.finish_reason
    body["choices"] = [choice]
    body["usage"] = usage(req, len(tokens))
    return body


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()
