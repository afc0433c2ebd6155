"""Validation of OpenAI chat and completion requests: every mistake is a 400 naming the field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, Literal

from pickspin.errors import InvalidRequest, PayloadTooLarge

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DISCARD_BYTES = 64 * 1024 * 1024  # read and dropped past the limit, then the 413
MAX_DEPTH = 64  # JSON nesting; OpenAI requests need a handful of levels (tools' schemas more)
# The prompt text sent to the classifier: it reads only the first few hundred tokens, and
# its event limit is below the body limit.
MAX_CLASSIFIED_CHARS = 32_000
AUTO_MODEL = "pickspin/auto"


@dataclass(frozen=True)
class ParsedRequest:
    kind: Literal["chat", "completion"]
    body: dict[str, Any]
    model: str
    prompt: str
    stream: bool


async def read_body(chunks: AsyncIterable[bytes], limit: int = MAX_BODY_BYTES,
                    discard: int = MAX_DISCARD_BYTES) -> bytes:
    """The body, read as it arrives and kept only up to `limit` bytes. Past it, the rest is
    read and dropped (up to `discard` bytes, so the client can read the 413 it gets rather
    than block writing) and `PayloadTooLarge` raised; nothing over the limit is ever parsed."""
    kept: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            if size < discard:
                async for chunk in chunks:
                    size += len(chunk)
                    if size >= discard:
                        break
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
        kept.append(chunk)
    return b"".join(kept)


def parse(raw: bytes, kind: Literal["chat", "completion"]) -> ParsedRequest:
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_NonFinite)
    except RecursionError:
        raise InvalidRequest(f"request body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    check_values(body)
    model = body.get("model", AUTO_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    _check_numbers(body)
    prompt = _chat_prompt(body) if kind == "chat" else _completion_prompt(body)
    return ParsedRequest(kind, body, model, prompt, stream)


class _NonFinite(str):
    """What `NaN`, `Infinity` and `-Infinity` parse to: found by `check_values`."""


def check_values(body: Any) -> None:
    """Reject what cannot be passed on as JSON: NaN and ±Infinity (not JSON, though Python
    reads them), strings with lone surrogates (not encodable as UTF-8), and nesting deeper
    than `MAX_DEPTH`; the error names the field."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"request body nests deeper than {MAX_DEPTH} levels",
                                 param=where or None)
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, where or "body")
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, _NonFinite):
            raise InvalidRequest(f"'{where}' is {value}, which is not a JSON number",
                                 param=where)
        elif isinstance(value, str):
            _check_text(value, where)


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"'{where}' holds a lone UTF-16 surrogate (not valid Unicode)",
                             param=where) from None


def _check_numbers(body: dict[str, Any]) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        value = body.get(field)
        if value is not None and (not _is_int(value) or value < 1):
            raise InvalidRequest(f"'{field}' must be a positive integer", param=field)
    n = body.get("n")
    if n is not None and (not _is_int(n) or n != 1):
        raise InvalidRequest("only 'n' = 1 is supported", param="n")
    ranges = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0),
              "presence_penalty": (-2.0, 2.0), "frequency_penalty": (-2.0, 2.0)}
    for field, (lo, hi) in ranges.items():
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
            raise InvalidRequest(f"'{field}' must be a number in [{lo}, {hi}]", param=field)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chat_prompt(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    texts: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"'{where}' must be an object", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"'{where}.role' must be one of {sorted(ROLES)}", param=f"{where}.role"
            )
        texts.append((role, _content_text(message.get("content"), f"{where}.content", role)))
    user = [text for role, text in texts if role == "user" and text]
    prompt = user[-1] if user else next((t for _, t in reversed(texts) if t), "")
    if not prompt.strip():
        raise InvalidRequest("the messages hold no text to answer", param="messages")
    return prompt


def _content_text(content: Any, where: str, role: str) -> str:
    if isinstance(content, str):
        return content
    if content is None and role in ("assistant", "tool", "function"):
        return ""
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequest(f"'{where}[{j}]' must be a content part object",
                                     param=f"{where}[{j}]")
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise InvalidRequest(f"'{where}[{j}].text' must be a string",
                                         param=f"{where}[{j}].text")
                parts.append(part["text"])
        return "\n".join(parts)
    raise InvalidRequest(f"'{where}' must be a string or an array of parts", param=where)


def _completion_prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("'prompt' is required", param="prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequest("'prompt' must be a string or an array of one string",
                                 param="prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidRequest("'prompt' must be a string", param="prompt")
    if not prompt.strip():
        raise InvalidRequest("'prompt' must not be empty", param="prompt")
    return prompt
