"""OpenAI request validation and response shapes for the emulated backends (pure).

Shapes follow the OpenAI API reference for `POST /v1/chat/completions` and
`POST /v1/completions` (objects `chat.completion`, `chat.completion.chunk`,
`text_completion`), as vLLM, TGI and trtllm-serve return them. Bad input raises
`InvalidRequest` (HTTP 400) naming the parameter; it never reaches a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pickspin.emulator.profile import estimate_prompt_tokens
from pickspin.errors import InvalidRequest, ModelNotFound, PickspinError


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chat_prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    parts: list[str] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"'{where}' must be an object", param=where)
        if not isinstance(msg.get("role"), str):
            raise InvalidRequest(f"'{where}.role' must be a string", param=f"{where}.role")
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    raise InvalidRequest(
                        f"'{where}.content' parts must be objects", param=f"{where}.content"
                    )
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
        elif content is not None:
            raise InvalidRequest(
                f"'{where}.content' must be a string, an array or null", param=f"{where}.content"
            )
    return "\n".join(parts)


def _completion_prompt(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return "\n".join(prompt)
        if all(_is_int(t) for t in prompt):
            return " ".join(str(t) for t in prompt)
    raise InvalidRequest(
        "'prompt' must be a string, an array of strings or an array of token ids",
        param="prompt",
    )


def parse_request(
    endpoint: Endpoint, body: bytes, *, served_model: str, default_max_tokens: int,
    max_model_len: int,
) -> CompletionRequest:
    """Validate a request body; raise `InvalidRequest` (400) or `ModelNotFound` (404)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = data.get("model", served_model)
    if not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    if model != served_model:
        raise ModelNotFound(f"The model `{model}` does not exist.", param="model")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    stream_options = data.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    n = data.get("n", 1)
    if n is not None and (not _is_int(n) or n != 1):
        raise InvalidRequest("the emulator serves n=1 only", param="n")

    limit_key = "max_completion_tokens" if endpoint is Endpoint.CHAT else "max_tokens"
    limit = data.get(limit_key)
    if limit is None:
        limit_key, limit = "max_tokens", data.get("max_tokens")
    if limit is not None:
        if not _is_int(limit):
            raise InvalidRequest(f"'{limit_key}' must be an integer", param=limit_key)
        if limit < 1:
            raise InvalidRequest(f"'{limit_key}' must be at least 1, got {limit}", param=limit_key)
        if limit > max_model_len:
            raise InvalidRequest(
                f"'{limit_key}' = {limit} exceeds the model's context length {max_model_len}",
                param=limit_key,
            )

    if endpoint is Endpoint.CHAT:
        if "messages" not in data:
            raise InvalidRequest("'messages' is required", param="messages")
        prompt_text = _chat_prompt(data["messages"])
    else:
        if "prompt" not in data:
            raise InvalidRequest("'prompt' is required", param="prompt")
        prompt_text = _completion_prompt(data["prompt"])

    return CompletionRequest(
        endpoint=endpoint,
        model=model,
        stream=stream,
        max_tokens=limit if limit is not None else default_max_tokens,
        length_limited=limit is not None,
        prompt_text=prompt_text,
        include_usage=bool(stream_options.get("include_usage", False)),
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
