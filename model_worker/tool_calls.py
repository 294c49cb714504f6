"""Tool calls out of generated text, for every backend.

`tool_choice` decides how a reply becomes tool calls:

- `auto`: the model writes calls in its family's format (if it wants to) and vLLM's maintained
  tool parser for that format (`--tool-call-parser`, `hermes` / `llama3_json` / `mistral` /
  any other vLLM knows) reads them out of the text, streamed or whole. vLLM's parsers are pure
  Python; they only need a tokenizer and vLLM's request model, so the hf and llamacpp backends
  use them too.
- a named function: constrained decoding writes exactly that function's arguments as JSON that
  validates against its `parameters` (`forced_schema`), so the call is guaranteed.
- `required`: constrained decoding writes a JSON array of `{"name", "parameters"}` objects, one
  per call, each for one of the tools (one call when `parallel_tool_calls` is false), as
  vLLM's own server does.

A `ToolOutput` follows one choice: `feed` turns streamed text into stream deltas, `close` sends
what is left at the end, and `result` turns a whole reply into (content, tool_calls).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from protocol.errors import InvalidRequest
from protocol.openai import ChatCompletionRequest, FunctionCall, ToolCall, random_id
from protocol.stream import DeltaFunctionCall, DeltaMessage, DeltaToolCall

logger = logging.getLogger(__name__)

# Where vLLM keeps its tool parsers, newest first (they moved in vLLM 0.12).
_PARSER_MODULES = ("vllm.tool_parsers", "vllm.entrypoints.openai.tool_parsers")


def parser_class(name: str) -> type[Any]:
    """vLLM's tool parser called `name`; InvalidRequest-free: a bad name is a startup error."""
    for module_name in _PARSER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        manager = module.ToolParserManager
        try:
            return manager.get_tool_parser(name)  # type: ignore[no-any-return]
        except KeyError:
            known = ", ".join(_registered(manager))
            raise ValueError(f"unknown tool call parser {name!r}; vLLM knows: {known}") from None
    raise ImportError("tool calling with tool_choice 'auto' needs vLLM's tool parsers (pip vllm)")


def _registered(manager: Any) -> list[str]:
    if hasattr(manager, "list_registered"):
        return list(manager.list_registered())
    return sorted(manager.tool_parsers)


def forced_schema(request: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema constrained decoding follows for `required` or a named function."""
    forced = request.forced_tool()
    if forced is not None:
        return _parameters(forced.function.parameters)
    if request.tool_choice != "required":
        return None
    calls: dict[str, Any] = {
        "type": "array",
        "minItems": 1,
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "enum": [tool.function.name]},
                        "parameters": _parameters(tool.function.parameters),
                    },
                    "required": ["name", "parameters"],
                    "additionalProperties": False,
                }
                for tool in request.active_tools()
            ]
        },
    }
    if not request.parallel_tool_calls:
        calls["maxItems"] = 1
    return calls


def _parameters(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A function's parameters; one that declares none takes none (`{}`)."""
    if not schema or schema == {"type": "object"}:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    return schema


class ToolOutput(Protocol):
    """Tool calls out of one choice's text."""

    def feed(self, text: str, token_ids: Sequence[int]) -> DeltaMessage | None: ...

    def close(self) -> DeltaMessage | None: ...

    def result(self, text: str) -> tuple[str | None, list[ToolCall]]: ...

    @property
    def called(self) -> bool:
        """Whether the reply holds tool calls (so far)."""
        ...


def _header(index: int, name: str, call_id: str | None = None) -> DeltaToolCall:
    return DeltaToolCall(
        index=index,
        id=call_id or random_id("call"),
        type="function",
        function=DeltaFunctionCall(name=name, arguments=""),
    )


def _arguments(index: int, text: str) -> DeltaToolCall:
    return DeltaToolCall(index=index, function=DeltaFunctionCall(arguments=text))


class NamedOutput:
    """The text *is* the arguments of the one forced function (constrained decoding)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.called = False

    def feed(self, text: str, token_ids: Sequence[int]) -> DeltaMessage | None:
        calls = [] if self.called else [_header(0, self.name)]
        self.called = True
        if text:
            calls.append(_arguments(0, text))
        return DeltaMessage(tool_calls=calls) if calls else None

    def close(self) -> DeltaMessage | None:
        return None if self.called else self.feed("", ())

    def result(self, text: str) -> tuple[str | None, list[ToolCall]]:
        self.called = True
        return None, [ToolCall(function=FunctionCall(name=self.name, arguments=text))]


class RequiredOutput:
    """The text is a JSON array of {"name", "parameters"} (constrained decoding); its calls are
    sent whole at the end of a stream."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self.called = False

    def feed(self, text: str, token_ids: Sequence[int]) -> DeltaMessage | None:
        self._text.append(text)
        return None

    def close(self) -> DeltaMessage | None:
        _, calls = self.result("".join(self._text))
        if not calls:
            return None
        pieces: list[DeltaToolCall] = []
        for i, call in enumerate(calls):
            pieces += [
                _header(i, call.function.name, call.id),
                _arguments(i, call.function.arguments),
            ]
        return DeltaMessage(tool_calls=pieces)

    def result(self, text: str) -> tuple[str | None, list[ToolCall]]:
        try:
            items = json.loads(text)
            calls = [
                ToolCall(
                    function=FunctionCall(
                        name=item["name"],
                        arguments=json.dumps(item["parameters"], ensure_ascii=False),
                    )
                )
                for item in items
            ]
        except (ValueError, TypeError, KeyError):  # cut short by max_tokens: no whole call
            return text, []
        self.called = bool(calls)
        return None, calls


class TokenizerView:
    """A backend's tokenizer with the `get_vocab` vLLM's parsers look tokens up in (llama.cpp's
    adapter has none: its vocabulary is spelt out once, on first use)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._vocab: dict[str, int] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def get_vocab(self) -> dict[str, int]:
        if self._vocab is None:
            tok = self._tokenizer
            if hasattr(tok, "get_vocab"):
                self._vocab = dict(tok.get_vocab())
            else:
                spelt = (tok.decode([i], skip_special_tokens=False) for i in range(len(tok)))
                self._vocab = {text: i for i, text in enumerate(spelt)}
        return self._vocab


class ParsedOutput:
    """`auto`: vLLM's tool parser reads the calls out of the model's own format."""

    def __init__(
        self, parser_cls: type[Any], tokenizer: TokenizerView, request: ChatCompletionRequest
    ) -> None:
        module = inspect.getmodule(parser_cls)
        vllm_request_cls = getattr(module, "ChatCompletionRequest")  # noqa: B009
        tools = [tool.model_dump(exclude_none=True) for tool in request.active_tools()]
        self._request = vllm_request_cls.model_validate(
            {
                "model": request.model,
                "messages": [{"role": "user", "content": ""}],
                "tools": tools,
                "tool_choice": "auto",
            }
        )
        if "tools" in inspect.signature(parser_cls.__init__).parameters:
            self._parser = parser_cls(tokenizer, self._request.tools)
        else:
            self._parser = parser_cls(tokenizer)
        self._text = ""
        self._ids: list[int] = []
        self._sent: dict[int, str] = {}  # tool index -> arguments sent so far
        self._ids_of: dict[int, str] = {}
        self.called = False

    def feed(self, text: str, token_ids: Sequence[int]) -> DeltaMessage | None:
        previous, previous_ids = self._text, self._ids
        self._text, self._ids = previous + text, [*previous_ids, *token_ids]
        if not text:
            return None
        found = self._parser.extract_tool_calls_streaming(
            previous_text=previous,
            current_text=self._text,
            delta_text=text,
            previous_token_ids=previous_ids,
            current_token_ids=self._ids,
            delta_token_ids=list(token_ids),
            request=self._request,
        )
        return None if found is None else self._ours(found)

    def _ours(self, found: Any) -> DeltaMessage | None:
        pieces: list[DeltaToolCall] = []
        for item in found.tool_calls or ():
            data = item.model_dump(exclude_none=True) if hasattr(item, "model_dump") else item
            piece = DeltaToolCall.model_validate(data, strict=False)
            self.called = True
            if piece.id:
                self._ids_of[piece.index] = piece.id
            if piece.function is not None and piece.function.arguments:
                self._sent[piece.index] = self._sent.get(piece.index, "") + piece.function.arguments
            pieces.append(piece)
        content = found.content or None
        if not pieces and content is None:
            return None
        return DeltaMessage(content=content, tool_calls=pieces or None)

    def close(self) -> DeltaMessage | None:
        """What the streaming parser held back: the rest of each call's arguments, as the
        whole-text parser reads them (vLLM's server does the same at the end)."""
        if not self.called:
            return None
        _, calls = self.result(self._text)
        pieces: list[DeltaToolCall] = []
        for i, call in enumerate(calls):
            sent, final = self._sent.get(i), call.function.arguments
            if i not in self._ids_of:
                pieces += [_header(i, call.function.name, call.id), _arguments(i, final)]
            elif sent is None:
                pieces.append(_arguments(i, final))
            elif final.startswith(sent) and final != sent:
                pieces.append(_arguments(i, final[len(sent) :]))
        return DeltaMessage(tool_calls=pieces) if pieces else None

    def result(self, text: str) -> tuple[str | None, list[ToolCall]]:
        info = self._parser.extract_tool_calls(text, self._request)
        if not info.tools_called:
            return text, []
        self.called = True
        calls = [
            ToolCall(
                id=self._ids_of.get(i) or random_id("call"),
                function=FunctionCall(name=call.function.name, arguments=call.function.arguments),
            )
            for i, call in enumerate(info.tool_calls)
        ]
        return info.content or None, calls


class ToolCalling:
    """A worker's tool calling: its parser, and per request the output of each choice."""

    def __init__(self, parser: str, tokenizer: Any) -> None:
        self.parser = parser
        self.tokenizer = TokenizerView(tokenizer)
        self._parser_cls: type[Any] | None = None

    async def load(self, request: ChatCompletionRequest) -> None:
        """Import vLLM's parser off the event loop (importing vLLM takes seconds) the first
        time a request needs it; 400 when vLLM is not installed."""
        if self._parser_cls is not None or not _parses(request):
            return
        try:
            parser_cls = await asyncio.to_thread(parser_class, self.parser)
            ParsedOutput(parser_cls, self.tokenizer, request)  # it may not fit the vocabulary
        except (ImportError, RuntimeError, ValueError) as exc:
            raise InvalidRequest(
                f"this model cannot call tools with tool_choice 'auto': {exc}",
                param="tool_choice",
                code="unsupported",
            ) from exc
        self._parser_cls = parser_cls

    def output(self, request: ChatCompletionRequest) -> ToolOutput | None:
        """How to read one choice of `request`; None when it has no tools to call."""
        if not request.active_tools():
            return None
        forced = request.forced_tool()
        if forced is not None:
            return NamedOutput(forced.function.name)
        if request.tool_choice == "required":
            return RequiredOutput()
        if self._parser_cls is None:
            raise RuntimeError("ToolCalling.load() was not awaited for this request")
        return ParsedOutput(self._parser_cls, self.tokenizer, request)


def _parses(request: ChatCompletionRequest) -> bool:
    """Whether the reply is read by a parser (tools offered with tool_choice auto)."""
    return bool(request.active_tools()) and request.tool_choice in (None, "auto")
