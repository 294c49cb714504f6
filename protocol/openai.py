"""The OpenAI HTTP API as pydantic models, ordered like OpenAI's reference.

Requests declare every official field plus a few engine extras (marked "extra"). Nothing is
silently dropped: a field OpenAI does not define is refused (400 `unknown_parameter`), and an
official field Corral does not honour is refused when set (400 `unsupported`; the table is
`protocol.refused`). Ranges are validated here so that every service rejects the same bad input
with the same message.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol import refused
from protocol.errors import InvalidRequest

# The most tools a request may offer (OpenAI's limit).
MAX_TOOLS = 128
# The most stop strings / stop ids a request may carry; OpenAI allows 4 strings, engines more.
MAX_STOP = 16
# The longest stop string: a stop matcher's cost per token grows with it.
MAX_STOP_CHARS = 256
# Temperatures below this decode greedily (as in vLLM): dividing logits by them overflows.
GREEDY_TEMPERATURE = 1e-5


def random_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class OpenAIRequest(OpenAIModel):
    """A request body: a key that is no field of the model is refused, never dropped.

    The refusal is raised as an `InvalidRequest` (not a `ValueError`), so it leaves pydantic as
    it is and reaches the client as 400 `unknown_parameter` with `param` set to the key.
    """

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data: Any) -> Any:
        known = {f.alias or name for name, f in cls.model_fields.items()}
        refused.refuse_unknown(data, known)
        return data


class StreamOptions(OpenAIModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = False
    include_obfuscation: bool | None = None  # ignored: no obfuscation padding is added


# ---------------------------------------------------------------- structured output


class ResponseFormatText(OpenAIModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["text"]


class ResponseFormatJSONObject(OpenAIModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["json_object"]


class JSONSchema(OpenAIModel):
    """`response_format.json_schema`: the schema is checked against its meta-schema here."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_json_schema(value, param="response_format")
        return value


class ResponseFormatJSONSchema(OpenAIModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["json_schema"]
    json_schema: JSONSchema


ResponseFormat = Annotated[
    ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema,
    Field(discriminator="type"),
]


def check_json_schema(schema: Any, *, param: str) -> None:
    """400 with `param` unless `schema` is a valid JSON Schema (checked by its meta-schema)."""
    import jsonschema

    if not isinstance(schema, dict):
        raise InvalidRequest("a JSON schema must be an object", param=param)
    latest = jsonschema.Draft202012Validator  # for a schema without (or with an unknown) $schema
    try:
        jsonschema.validators.validator_for(schema, default=latest).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"invalid JSON schema: {exc.message}", param=param) from None


class TextContentPart(OpenAIModel):
    type: Literal["text"]
    text: str


# ---------------------------------------------------------------- tools

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionDefinition(OpenAIModel):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(OpenAIModel):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(OpenAIModel):
    name: str = Field(pattern=FUNCTION_NAME)


class NamedToolChoice(OpenAIModel):
    type: Literal["function"]
    function: FunctionName


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class FunctionCall(OpenAIModel):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ToolCall(OpenAIModel):
    id: str = Field(default_factory=lambda: random_id("call"))
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(OpenAIModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant: the calls it made
    tool_call_id: str | None = None  # tool: the call this message answers

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


StopField = Annotated[str | list[str] | None, Field(default=None)]


class SamplingFields(OpenAIRequest):
    """Fields shared by chat and text completions."""

    model: str = Field(min_length=1)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    n: int = Field(default=1, ge=1, le=16)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    stop: StopField
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    user: str | None = None
    # extra: engine sampling controls, as vLLM names them
    top_k: int = Field(default=-1, ge=-1)
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, ge=0.01, le=10.0)
    stop_token_ids: list[int] = Field(default_factory=list, max_length=MAX_STOP)
    ignore_eos: bool = False
    min_tokens: int = Field(default=0, ge=0)

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.isdigit():
                raise ValueError(f"logit_bias keys are token ids, got {key!r}")
            if not -100.0 <= bias <= 100.0:
                raise ValueError("logit_bias values must be between -100 and 100")
        return value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        items = [value] if isinstance(value, str) else (value or [])
        if len(items) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed")
        if any(item == "" for item in items):
            raise ValueError("stop sequences must not be empty strings")
        if any(len(item) > MAX_STOP_CHARS for item in items):
            raise ValueError(f"stop sequences must be at most {MAX_STOP_CHARS} characters long")
        return value

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> SamplingFields:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @model_validator(mode="after")
    def _greedy_means_one_choice(self) -> SamplingFields:
        if self.n > 1 and self.temperature < GREEDY_TEMPERATURE:
            raise ValueError("n > 1 needs temperature > 0: greedy decoding repeats one answer")
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def logit_biases(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(k), v) for k, v in (self.logit_bias or {}).items())

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    # accepted, ignored: metadata about the caller, which nothing here stores or bills by
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None  # prefix caching is automatic
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    # refused unless neutral (protocol.refused.CHAT)
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ChatCompletionRequest:
        refused.refuse_unsupported(self.__dict__, refused.CHAT)
        return self

    tools: list[ChatTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    # Deprecated by OpenAI in favour of tools/tool_choice; refused with a pointer to those.
    functions: Any = None
    function_call: Any = None

    @model_validator(mode="after")
    def _tools_fit_together(self) -> ChatCompletionRequest:
        # Raised as InvalidRequest (not ValueError) so that the 400 names its param.
        for legacy, current in (("functions", "tools"), ("function_call", "tool_choice")):
            if getattr(self, legacy) is not None:
                raise InvalidRequest(
                    f"'{legacy}' is deprecated and not supported; use '{current}'",
                    param=legacy,
                    code="unsupported",
                )
        if self.tools is not None and not self.tools:
            raise InvalidRequest("tools must not be an empty list", param="tools")
        names = [tool.function.name for tool in self.tools or ()]
        if len(set(names)) != len(names):
            raise InvalidRequest("tools must have distinct function names", param="tools")
        choice = self.tool_choice
        if choice in ("required",) or isinstance(choice, NamedToolChoice):
            if not names:
                raise InvalidRequest("tool_choice needs tools to choose from", param="tool_choice")
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise InvalidRequest(
                f"tool_choice names function {choice.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        return self

    def active_tools(self) -> list[ChatTool]:
        """The tools the model is offered: none when there are none or tool_choice is 'none'."""
        return [] if self.tool_choice == "none" else list(self.tools or ())

    def forced_tool(self) -> ChatTool | None:
        """The one function tool_choice names, if it names one."""
        if not isinstance(self.tool_choice, NamedToolChoice):
            return None
        name = self.tool_choice.function.name
        return next(t for t in self.tools or () if t.function.name == name)

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


PromptField = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(SamplingFields):
    prompt: PromptField
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=16, ge=1)
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1, le=20)

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> CompletionRequest:
        refused.refuse_unsupported(self.__dict__, refused.COMPLETIONS)
        return self

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, value: PromptField) -> PromptField:
        if isinstance(value, list):
            if not value:
                raise ValueError("prompt must not be an empty list")
            if isinstance(value[0], list) and any(not item for item in value):
                raise ValueError("token-id prompts must not be empty")
        return value

    def prompts(self) -> list[str] | list[list[int]]:
        """The prompt as a list of prompts (text or token ids)."""
        return _as_batch(self.prompt)


def _as_batch(value: PromptField) -> list[str] | list[list[int]]:
    """A prompt/input in any of its four OpenAI forms, as a list of texts or token-id lists."""
    if isinstance(value, str):
        return [value]
    if all(isinstance(x, int) for x in value):
        return [cast(list[int], value)]
    return cast(list[str] | list[list[int]], value)


class EmbeddingRequest(OpenAIRequest):
    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("input must not be an empty list")
        if value == "":
            raise ValueError("input must not be an empty string")
        return value

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> EmbeddingRequest:
        refused.refuse_unsupported(self.__dict__, refused.EMBEDDINGS)
        return self

    def inputs(self) -> list[str] | list[list[int]]:
        return _as_batch(self.input)


# ---------------------------------------------------------------- responses


class Usage(OpenAIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class TopLogprob(OpenAIModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobEntry(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChatLogprobs(OpenAIModel):
    content: list[TokenLogprobEntry] | None = None


def _none(value: object) -> bool:
    return value is None


class AssistantMessage(OpenAIModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=_none)


FinishReason = Literal["stop", "length", "tool_calls", "abort"]


class ChatChoice(OpenAIModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionResponse(OpenAIModel):
    id: str = Field(default_factory=lambda: random_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionLogprobs(OpenAIModel):
    text_offset: list[int] = Field(default_factory=list)
    token_logprobs: list[float | None] = Field(default_factory=list)
    tokens: list[str] = Field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = Field(default_factory=list)


class CompletionChoice(OpenAIModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None = None


class CompletionResponse(OpenAIModel):
    id: str = Field(default_factory=lambda: random_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class EmbeddingData(OpenAIModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class ModelCard(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=now)
    owned_by: str = "corral"
    # Extra (as vLLM spells it): tokens of prompt and answer together; None when unknown.
    max_model_len: int | None = None


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
