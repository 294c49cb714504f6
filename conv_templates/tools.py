"""Tools in prompts: the functions a model is offered, its calls and their results in history.

Two ways, as for plain chat. A model's own HF chat_template that takes `tools` (most recent ones
do) renders everything itself (`HfTools`). Else a registry row whose family has a defined tool
format (`tool_format`) renders them as data (`RowTools`):

- `hermes` (ChatML: Qwen2.5, Hermes-2-Pro, SmolLM2), as Qwen2.5's chat_template writes it: the
  tools as JSON lines inside `<tools></tools>` in the system prompt, each call as
  `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` after the assistant's text,
  and the results of consecutive tool messages together in one user turn, each in
  `<tool_response>\\n...\\n</tool_response>`.
- `llama3_json` (Llama 3.1's JSON tool calling, as vLLM's tool_chat_template_llama3.1_json.jinja
  writes it): "Environment: ipython" in the system prompt, the tools with an instruction in the
  first user message, a call as `{"name": ..., "parameters": {...}}` (several joined by "; "),
  and each result as `{"output": ...}` in an `ipython` turn.

Messages and tools come in OpenAI's shape (dicts, as the request carried them; a call's
`arguments` is JSON text). Each format names the vLLM tool parser that reads its calls back.
A template that can express none of this gives `tool_template(...) is None`, and the worker
answers a request with tools 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .base import ConversationTemplate, Message, TemplateError, check_messages
from .hf import ChatTemplate
from .registry import DEFAULT_REGISTRY, Registry

Messages = Sequence[Mapping[str, Any]]
Tools = Sequence[Mapping[str, Any]]


class ToolTemplate(Protocol):
    """Renders a conversation with tools; `parser` names the vLLM tool parser for its output."""

    @property
    def name(self) -> str: ...

    @property
    def parser(self) -> str: ...

    def render(
        self, messages: Messages, tools: Tools, *, add_generation_prompt: bool = True
    ) -> str: ...


def _arguments(call: Mapping[str, Any], where: str) -> tuple[str, Any]:
    """(name, arguments as a JSON value) of an OpenAI tool call in the history."""
    function = call.get("function") or {}
    name, text = function.get("name"), function.get("arguments", "{}")
    if not isinstance(name, str):
        raise TemplateError(f"{where}.function.name must be a string")
    try:
        return name, json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise TemplateError(f"{where}.function.arguments is not valid JSON: {exc}") from exc


def _calls(message: Mapping[str, Any], index: int) -> list[tuple[str, Any]]:
    calls = message.get("tool_calls") or ()
    return [_arguments(call, f"messages[{index}].tool_calls[{j}]") for j, call in enumerate(calls)]


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


# ------------------------------------------------------------------ formats of registry rows


def _hermes(system: str, tools: Tools) -> str:
    lines = "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools)
    head = f"{system}\n\n" if system else ""
    return (
        f"{head}# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
        f"{lines}\n</tools>\n\nFor each function call, return a json object with function name "
        "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def _hermes_turns(row: ConversationTemplate, messages: Messages, tools: Tools) -> list[Message]:
    turns: list[Message] = []
    system = row.system_message
    for i, message in enumerate(messages):
        role, text = message.get("role"), _text(message)
        if role == "system" and i == 0:
            system = text
        elif role == "assistant" and message.get("tool_calls"):
            calls = "".join(
                '\n<tool_call>\n{"name": '
                + json.dumps(name, ensure_ascii=False)
                + ', "arguments": '
                + json.dumps(args, ensure_ascii=False)
                + "}\n</tool_call>"
                for name, args in _calls(message, i)
            )
            turns.append(Message("assistant", (text + calls) if text else calls[1:]))
        elif role == "tool":
            response = f"<tool_response>\n{text}\n</tool_response>"
            if turns and turns[-1].role == "tool":
                turns[-1] = Message("tool", f"{turns[-1].content}\n{response}")
            else:
                turns.append(Message("tool", response))
        else:
            turns += check_messages([{"role": role, "content": text}])
    system = _hermes(system, tools) if tools else system
    return [Message("system", system), *turns]


_LLAMA3_INSTRUCTION = (
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its value}.Do not use variables.\n\n"
)


def _llama3_turns(row: ConversationTemplate, messages: Messages, tools: Tools) -> list[Message]:
    turns: list[Message] = []
    system = row.system_message
    for i, message in enumerate(messages):
        role, text = message.get("role"), _text(message)
        if role == "system" and i == 0:
            system = text
        elif role == "assistant" and message.get("tool_calls"):
            calls = "; ".join(
                json.dumps({"name": name, "parameters": args}, ensure_ascii=False)
                for name, args in _calls(message, i)
            )
            turns.append(Message("assistant", calls))
        elif role == "tool":
            turns.append(Message("tool", json.dumps({"output": text}, ensure_ascii=False)))
        else:
            turns += check_messages([{"role": role, "content": text}])
    if tools:
        offer = _LLAMA3_INSTRUCTION + "".join(
            json.dumps(tool, indent=4, ensure_ascii=False) + "\n\n" for tool in tools
        )
        first = next((i for i, t in enumerate(turns) if t.role == "user"), None)
        if first is None:
            turns.insert(0, Message("user", offer))
        else:
            turns[first] = Message("user", offer + turns[first].content)
    system = "Environment: ipython\n\n" + system if tools else system
    return [Message("system", system), *turns]


# tool_format -> (turns builder, vLLM tool parser)
_ROW_FORMATS: dict[
    str, tuple[Callable[[ConversationTemplate, Messages, Tools], list[Message]], str]
] = {
    "hermes": (_hermes_turns, "hermes"),
    "llama3_json": (_llama3_turns, "llama3_json"),
}


class RowTools:
    """A registry row's family tool format."""

    def __init__(self, row: ConversationTemplate) -> None:
        if row.tool_format not in _ROW_FORMATS:
            raise ValueError(f"template {row.name!r} has no known tool format")
        self.row = row
        self._turns, self.parser = _ROW_FORMATS[row.tool_format]

    @property
    def name(self) -> str:
        return self.row.name

    def render(
        self, messages: Messages, tools: Tools, *, add_generation_prompt: bool = True
    ) -> str:
        check_messages(messages, tool_role=True)
        return self.row.render_turns(self._turns(self.row, messages, tools), add_generation_prompt)


# ------------------------------------------------------------------ a model's own chat_template

# Marks of the tool formats in a chat_template's text -> the vLLM parser that reads them.
_HF_MARKS: tuple[tuple[str, str], ...] = (
    ("<tool_call>", "hermes"),
    ("[TOOL_CALLS]", "mistral"),
    ('"parameters": ', "llama3_json"),
)


def hf_parser(source: str) -> str | None:
    """The tool parser a chat_template's own tool format needs, if it shows one."""
    return next((parser for mark, parser in _HF_MARKS if mark in source), None)


def _hf_message(message: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A message as HF chat templates expect it: calls with their arguments as objects."""
    out: dict[str, Any] = {"role": message.get("role"), "content": _text(message)}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {"id": call.get("id"), "type": "function", "function": {"name": n, "arguments": a}}
            for call, (n, a) in zip(message["tool_calls"], _calls(message, index), strict=True)
        ]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    return out


class HfTools:
    """A model's chat_template that takes `tools` itself."""

    def __init__(self, template: ChatTemplate, parser: str) -> None:
        self.template = template
        self.parser = parser

    @property
    def name(self) -> str:
        return self.template.name

    def render(
        self, messages: Messages, tools: Tools, *, add_generation_prompt: bool = True
    ) -> str:
        check_messages(messages, tool_role=True)
        full = [_hf_message(m, i) for i, m in enumerate(messages)]
        last_assistant = full[-1]["role"] == "assistant"
        return self.template.render_with(
            full, add_generation_prompt and not last_assistant, tools=list(tools) or None
        )


def takes_tools(template: ChatTemplate) -> bool:
    """Whether a chat_template reads `tools` at all (else it would drop them silently)."""
    return "tools" in template.source


def tool_template(
    template: object,
    names: Sequence[str] = (),
    parser: str | None = None,
    registry: Registry = DEFAULT_REGISTRY,
) -> ToolTemplate | None:
    """How a model renders tools, or None when it cannot.

    A registry row uses its family's tool format. A model's chat_template renders tools itself
    when it takes them and shows a known tool format; one that does not (SmolLM2's) falls back
    to the tool format of the row its names match (most telling name first). `parser`
    overrides the parser derived from the format (`--tool-call-parser`).
    """
    row: ConversationTemplate | None = None
    if isinstance(template, ConversationTemplate):
        row = template
    elif isinstance(template, ChatTemplate):
        derived = parser or hf_parser(template.source)
        if takes_tools(template) and derived is not None:
            return HfTools(template, derived)
        row = next((found[0] for found in map(registry.find, names) if found), None)
    if row is None or not row.tool_format:
        return None
    tools = RowTools(row)
    if parser:
        tools.parser = parser
    return tools
