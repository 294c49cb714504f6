"""`/v1/responses` as an adapter over chat completions: the Responses request becomes a chat
request, which is dispatched and relayed like any other (same auth, limits, failover, usage
accounting), and the chat reply becomes a Response (`responses_stream` does it for a stream).

Text in (a string or message items, `instructions` as the system message), text out; function
tools map to chat tools and `function_call` items to assistant `tool_calls` and back, when the
chat endpoint takes tools. Stateless: `previous_response_id` and `store: true` are refused.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from protocol.errors import InvalidRequest, UpstreamError
from protocol.openai import ChatCompletionRequest
from protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    IncompleteDetails,
    InputMessage,
    ItemStatus,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputText,
    Response,
    ResponsesRequest,
    ResponseUsage,
)
from servekit.http import invalid_request


def tools_supported() -> bool:
    """Whether the chat endpoint behind this adapter takes `tools` (tool calling is served)."""
    return "tools" in ChatCompletionRequest.model_fields


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported")


def to_chat(req: ResponsesRequest) -> dict[str, Any]:
    """The chat-completions body that serves `req` (streams always ask for usage)."""
    if req.previous_response_id is not None:
        raise _unsupported(
            "previous_response_id is not supported: this server stores no responses; send the "
            "whole conversation in `input`",
            "previous_response_id",
        )
    if req.store:
        raise _unsupported(
            "store: true is not supported: this server stores no responses (use store: false)",
            "store",
        )
    body: dict[str, Any] = {"model": req.model, "messages": _messages(req), "stream": req.stream}
    if req.max_output_tokens is not None:
        body["max_completion_tokens"] = req.max_output_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.user is not None:
        body["user"] = req.user
    if req.stream:
        body["stream_options"] = {"include_usage": True}
    body.update(_tools(req))
    return body


def _messages(req: ResponsesRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if req.instructions:
        messages.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        return [*messages, {"role": "user", "content": req.input}]
    for index, item in enumerate(req.input):
        if isinstance(item, InputMessage):
            messages.append({"role": item.role, "content": item.text()})
            continue
        if not tools_supported():
            raise _unsupported(
                f"{item.type} items need tool calling, which this server does not offer yet",
                f"input[{index}]",
            )
        if isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return messages


def _tools(req: ResponsesRequest) -> dict[str, Any]:
    choice = req.tool_choice
    if not req.tools:
        if choice not in (None, "none", "auto"):
            raise InvalidRequest("tool_choice needs tools", param="tool_choice")
        return {}
    if not tools_supported():
        raise _unsupported("tools are not supported by this server yet", "tools")
    out: dict[str, Any] = {
        "tools": [
            {
                "type": "function",
                "function": tool.model_dump(exclude={"type"}, exclude_none=True),
            }
            for tool in req.tools
        ]
    }
    if isinstance(choice, str):
        out["tool_choice"] = choice
    elif choice is not None:
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if req.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = req.parallel_tool_calls
    return out


def chat_request(req: ResponsesRequest) -> tuple[ChatCompletionRequest, bytes]:
    """`to_chat(req)` checked by the chat schema (as the worker will), and encoded."""
    body = to_chat(req)
    try:
        chat = ChatCompletionRequest.model_validate(body, strict=False)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None
    return chat, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def usage_of(usage: Any) -> ResponseUsage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return ResponseUsage(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )


def finished(response: Response, finish_reason: str | None) -> None:
    """Set the response's final status from the chat finish reason."""
    if finish_reason == "length":
        response.status = "incomplete"
        response.incomplete_details = IncompleteDetails(reason="max_output_tokens")
    else:
        response.status = "completed"


def from_chat(req: ResponsesRequest, chat: dict[str, Any]) -> Response:
    """The Response for a (non-streamed) chat completion."""
    try:
        choice = chat["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("the worker sent a chat completion without a choice") from None
    response = Response.opened(req)
    finish = choice.get("finish_reason")
    status: ItemStatus = "incomplete" if finish == "length" else "completed"
    output: list[OutputItem] = []
    calls = message.get("tool_calls") or []
    if message.get("content") or not calls:
        text = OutputText(text=message.get("content") or "")
        output.append(OutputMessage(status=status, content=[text]))
    for call in calls:
        function = call.get("function") or {}
        output.append(
            OutputFunctionCall(
                call_id=str(call.get("id")),
                name=str(function.get("name")),
                arguments=str(function.get("arguments", "")),
            )
        )
    response.output = output
    response.usage = usage_of(chat.get("usage"))
    finished(response, finish)
    return response
