"""OpenAI's Responses API (`/v1/responses`) as pydantic models, the part Corral serves.

Text in (a string or message items), text out, streamed as typed events. Corral is stateless:
nothing is stored, so `previous_response_id` and `store: true` are refused, and every field
not listed here is refused with 400 naming it (`extra="forbid"`), since a silently ignored
field is a wrong answer the client cannot see.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from protocol import refused
from protocol.openai import now, random_id


class ResponsesModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InputText(ResponsesModel):
    type: Literal["input_text"]
    text: str


class OutputTextPart(ResponsesModel):
    """Assistant text in the history (as the Responses API returns it, for multi-turn)."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] | None = None


ContentPart = Annotated[InputText | OutputTextPart, Field(discriminator="type")]


class InputMessage(ResponsesModel):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionCallItem(ResponsesModel):
    """A function call the model made earlier (for a tool round trip)."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(ResponsesModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


def _item_type(value: Any) -> str:
    """An item's `type`; a message may leave it out."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return str(kind or "message")


InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_type),
]


class TextFormat(ResponsesModel):
    type: Literal["text"] = "text"


class TextConfig(ResponsesModel):
    format: TextFormat = Field(default_factory=TextFormat)


class FunctionTool(ResponsesModel):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceFunction(ResponsesModel):
    type: Literal["function"]
    name: str = Field(min_length=1)


ToolChoice = Literal["none", "auto", "required"] | ToolChoiceFunction


class ResponsesRequest(ResponsesModel):
    """A field not declared here is refused with 400 `unknown_parameter`, as for chat."""

    model: str = Field(min_length=1)
    input: str | list[InputItem] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    user: str | None = None
    tools: list[FunctionTool] = Field(default_factory=list, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    truncation: Literal["disabled"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_fields(cls, data: Any) -> Any:
        refused.refuse_unknown(data, set(cls.model_fields))
        return data


# ---------------------------------------------------------------- what comes back


class OutputText(ResponsesModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(ResponsesModel):
    type: Literal["message"] = "message"
    id: str = Field(default_factory=lambda: random_id("msg"))
    status: ItemStatus = "completed"
    role: Literal["assistant"] = "assistant"
    content: list[OutputText] = Field(default_factory=list)


class OutputFunctionCall(ResponsesModel):
    type: Literal["function_call"] = "function_call"
    id: str = Field(default_factory=lambda: random_id("fc"))
    call_id: str
    name: str
    arguments: str
    status: ItemStatus = "completed"


OutputItem = OutputMessage | OutputFunctionCall


class InputTokensDetails(ResponsesModel):
    cached_tokens: int = 0


class OutputTokensDetails(ResponsesModel):
    reasoning_tokens: int = 0


class ResponseUsage(ResponsesModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(ResponsesModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(ResponsesModel):
    code: str
    message: str


class Reasoning(ResponsesModel):
    effort: None = None
    summary: None = None


Status = Literal["in_progress", "completed", "incomplete", "failed"]


class Response(ResponsesModel):
    id: str = Field(default_factory=lambda: random_id("resp"))
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=now)
    status: Status = "in_progress"
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    reasoning: Reasoning = Field(default_factory=Reasoning)
    store: Literal[False] = False
    temperature: float | None = None
    text: TextConfig = Field(default_factory=TextConfig)
    tool_choice: ToolChoice = "auto"
    tools: list[FunctionTool] = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def opened(cls, req: ResponsesRequest) -> Response:
        """The response as it starts: the request's settings echoed, nothing generated yet."""
        return cls(
            model=req.model,
            instructions=req.instructions,
            max_output_tokens=req.max_output_tokens,
            parallel_tool_calls=req.parallel_tool_calls is not False,
            temperature=req.temperature,
            tool_choice=req.tool_choice or "auto",
            tools=req.tools,
            top_p=req.top_p,
            user=req.user,
            metadata=req.metadata or {},
        )

    def output_text(self) -> str:
        return "".join(
            part.text
            for item in self.output
            if isinstance(item, OutputMessage)
            for part in item.content
        )
