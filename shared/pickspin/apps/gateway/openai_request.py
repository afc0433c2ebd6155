"""The gateway's reading of OpenAI chat and completion requests: every mistake is a 400
naming the field. Bytes and JSON limits here; types and ranges in `pickspin.core.openai_protocol`;
then the prompt the classifier reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, Literal

from pickspin.core.errors import InvalidRequest, PayloadTooLarge
from pickspin.core.openai_protocol import ChatRequest, CompletionRequest

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
    """A request body → what the gateway needs of it; the types and ranges are
    `pickspin.core.openai_protocol`'s (the emulated backends read the same models)."""
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
    if kind == "chat":
        chat = ChatRequest.read(body)
        request: ChatRequest | CompletionRequest = chat
        prompt = _chat_prompt(chat)
    else:
        request = CompletionRequest.read(body)
        prompt = _completion_prompt(request)
    model = AUTO_MODEL if request.model is None else request.model
    if not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    return ParsedRequest(kind, body, model, prompt, bool(request.stream))


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


def _chat_prompt(chat: ChatRequest) -> str:
    """The text the classifier reads: the last user message's, else the last text."""
    for i, message in enumerate(chat.messages):
        if message.content is None and message.role not in ("assistant", "tool", "function"):
            raise InvalidRequest(f"'messages[{i}].content' is required for a {message.role} "
                                 "message", param=f"messages[{i}].content")
    texts = [(m.role, m.text) for m in chat.messages]
    user = [text for role, text in texts if role == "user" and text]
    prompt = user[-1] if user else next((t for _, t in reversed(texts) if t), "")
    if not prompt.strip():
        raise InvalidRequest("the messages hold no text to answer", param="messages")
    return prompt


def _completion_prompt(request: CompletionRequest) -> str:
    """One prompt (a batch of several would be several answers)."""
    prompt = request.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequest("'prompt' must be a string or an array of one string",
                                 param="prompt")
        prompt = prompt[0]
    if not prompt.strip():
        raise InvalidRequest("'prompt' must not be empty", param="prompt")
    return str(prompt)
