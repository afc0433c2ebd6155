"""The OpenAI request bodies as one set of models, read by the gateway and the emulated
backends alike (`POST /v1/chat/completions`, `POST /v1/completions`, per the OpenAI API
reference). Types and ranges are checked here; what each side does beyond them (the
gateway's prompt for the classifier, the emulator's served model and context length) stays
with it. Unknown fields are kept and passed on: a backend may know them.

>>> ChatRequest.read({"messages": [{"role": "user", "content": "hi"}]}).messages[0].text
'hi'
>>> ChatRequest.read({"messages": []})  # doctest: +ELLIPSIS
Traceback (most recent call last):
pickspin.core.errors.InvalidRequest: 'messages': List should have at least 1 item after ...
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from pickspin.core.errors import InvalidRequest

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
PositiveInt = Annotated[int, Field(ge=1)]
OPEN = ConfigDict(strict=True, extra="allow", frozen=True)


class ContentPart(BaseModel):
    """One part of a message's content; only text parts carry text."""

    model_config = OPEN
    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_part_has_text(self) -> Self:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs its 'text'")
        return self


class Message(BaseModel):
    model_config = OPEN
    role: Role
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        """The message's text: its string, or its text parts one per line."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text is not None)


class StreamOptions(BaseModel):
    model_config = OPEN
    include_usage: bool = False


def _prompt(value: Any) -> str | list[str] | list[int]:
    """A completion prompt: a string, or a non-empty array of strings or of token ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and (
            all(isinstance(p, str) for p in value)
            or all(isinstance(t, int) and not isinstance(t, bool) for t in value)):
        return value
    raise ValueError("must be a string, an array of strings or an array of token ids")


class _Request(BaseModel):
    """What chat and completion requests share."""

    model_config = OPEN
    model: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None  # one choice per request
    max_tokens: PositiveInt | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None

    @classmethod
    def read(cls, body: Any) -> Self:
        """Validate a parsed JSON body; every problem is listed in one `InvalidRequest`
        (400) whose `param` is the first one's field, e.g. `messages[0].role`."""
        if not isinstance(body, dict):
            raise InvalidRequest("the request body must be a JSON object")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise invalid(exc) from None


class ChatRequest(_Request):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: PositiveInt | None = None


class CompletionRequest(_Request):
    prompt: Annotated[Any, AfterValidator(_prompt)]


def invalid(exc: ValidationError) -> InvalidRequest:
    """A pydantic error → the 400 naming the field. For a value of none of a union's
    types, the most specific place any branch found wrong is named."""
    problems: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        said = problems.setdefault(param_of(error["loc"]), [])
        if error["msg"] not in said:
            said.append(error["msg"])
    # a union's branches report the same place, or one goes deeper: the deepest says most
    deepest = [p for p in problems if not any(q != p and q.startswith(p) for q in problems)]
    listed = "; ".join(f"'{p}': {' or '.join(problems[p])}" for p in deepest)
    return InvalidRequest(listed, param=deepest[0])


def param_of(loc: tuple[int | str, ...]) -> str:
    """`("messages", 0, "content", "list[ContentPart]", 1)` → `messages[0].content[1]`:
    the field path, without the names pydantic gives the branches of a union."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() and part not in _BRANCHES:
            path += f".{part}" if path else part
    return path


_BRANCHES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})
