"""Tool calls out of replies (model_worker/tool_calls.py): vLLM's parsers per family, streamed
and whole, and the JSON that constrained decoding writes for `required` / a named function."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from model_worker.tool_calls import NamedOutput, RequiredOutput, ToolCalling, forced_schema
from protocol.errors import InvalidRequest
from protocol.openai import ChatCompletionRequest
from protocol.stream import DeltaMessage

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}


def request(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}
    )


def gather(pieces: list[DeltaMessage | None]) -> tuple[str, dict[int, dict[str, str]]]:
    """Content and calls (index -> id, name, arguments) as a client joins stream deltas."""
    content, calls = "", {}
    for piece in pieces:
        if piece is None:
            continue
        content += piece.content or ""
        for part in piece.tool_calls or ():
            call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += part.id or ""
            if part.function is not None:
                call["name"] += part.function.name or ""
                call["arguments"] += part.function.arguments or ""
    return content, calls


def stream(out: Any, tokenizer: Any, text: str) -> list[DeltaMessage | None]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [out.feed(tokenizer.decode([i]), [i]) for i in ids]
    return [*pieces, out.close()]


# ------------------------------------------------------------------ constrained decoding


def test_named_function_schema_is_its_parameters() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert (
        forced_schema(request(tools=[WEATHER, TIME], tool_choice=named))
        == (WEATHER["function"]["parameters"])
    )
    no_params = {"type": "function", "function": {"name": "get_time"}}
    schema = forced_schema(request(tools=[WEATHER, TIME], tool_choice=no_params))
    assert schema == {"type": "object", "properties": {}, "additionalProperties": False}
    assert forced_schema(request(tools=[WEATHER])) is None
    assert forced_schema(request(tools=[WEATHER], tool_choice="none")) is None


def test_required_schema_is_an_array_of_calls_to_the_tools() -> None:
    schema = forced_schema(request(tools=[WEATHER, TIME], tool_choice="required"))
    assert schema is not None
    good = [
        {"name": "get_weather", "parameters": {"city": "Rome"}},
        {"name": "get_time", "parameters": {}},
    ]
    jsonschema.validate(good, schema)
    for bad in (
        [],
        [{"name": "nope", "parameters": {}}],
        [{"name": "get_weather", "parameters": {}}],
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    single = forced_schema(
        request(tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False)
    )
    assert single is not None and single["maxItems"] == 1


def test_named_output_streams_the_arguments_of_that_one_function() -> None:
    out = NamedOutput("get_weather")
    pieces = [out.feed('{"city"', [1]), out.feed(': "Rome"}', [2]), out.close()]
    content, calls = gather(pieces)
    assert content == ""
    assert [(c["name"], c["arguments"]) for c in calls.values()] == [
        ("get_weather", '{"city": "Rome"}')
    ]
    assert calls[0]["id"]
    whole = NamedOutput("get_weather").result('{"city": "Rome"}')
    assert whole[0] is None and whole[1][0].function.arguments == '{"city": "Rome"}'


def test_required_output_reads_the_array_and_sends_calls_whole_at_the_end() -> None:
    text = (
        '[{"name": "get_weather", "parameters": {"city": "Rome"}}, '
        '{"name": "get_time", "parameters": {}}]'
    )
    out = RequiredOutput()
    assert out.feed(text[:10], [1]) is None
    assert out.feed(text[10:], [2]) is None
    _, calls = gather([out.close()])
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Rome"}),
        ("get_time", {}),
    ]
    assert out.called
    cut = RequiredOutput().result(text[:20])  # max_tokens cut it: no call, the text as content
    assert cut == (text[:20], [])


# ------------------------------------------------------------------ vLLM's parsers


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_path: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_path)


def _auto(parser: str, tokenizer: Any, tools: list[Any]) -> tuple[ToolCalling, Any]:
    calling = ToolCalling(parser, tokenizer)
    req = request(tools=tools)
    asyncio.run(calling.load(req))
    return calling, req


HERMES = (
    "Sure.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
)


def test_hermes_parallel_calls_whole_and_streamed(tiny_tokenizer: Any) -> None:
    calling, req = _auto("hermes", tiny_tokenizer, [WEATHER, TIME])
    content, calls = calling.output(req).result(HERMES)  # type: ignore[union-attr]
    assert content == "Sure.\n"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    out = calling.output(req)
    streamed, by_index = gather(stream(out, tiny_tokenizer, HERMES))
    assert streamed == "Sure.\n"
    assert [(c["name"], json.loads(c["arguments"])) for c in by_index.values()] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    assert all(c["id"] for c in by_index.values())
    assert out is not None and out.called


def test_hermes_text_without_calls_is_content(tiny_tokenizer: Any) -> None:
    calling, req = _auto("hermes", tiny_tokenizer, [WEATHER])
    out = calling.output(req)
    assert out is not None
    assert out.result("Just text.") == ("Just text.", [])
    assert gather(stream(calling.output(req), tiny_tokenizer, "Just text.")) == ("Just text.", {})


def test_a_parser_that_does_not_fit_the_vocabulary_is_a_400(tiny_tokenizer: Any) -> None:
    """llama3_json looks for Llama 3's <|python_tag|> token, which the tiny vocabulary lacks."""
    with pytest.raises(InvalidRequest) as caught:
        _auto("llama3_json", tiny_tokenizer, [WEATHER])
    assert (caught.value.param, caught.value.code) == ("tool_choice", "unsupported")


def _fixtures_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "fetch_llama_vocab.py"
    spec = importlib.util.spec_from_file_location("fetch_llama_vocab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llama3_json_on_the_real_llama_3_vocabulary() -> None:
    fixtures = _fixtures_module()
    fixtures.require_fixtures()
    path = fixtures.tokenizer_file("ggml-vocab-llama-bpe.gguf")
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
    # The fixture is Llama 3.0's vocabulary, which has no tool calling: the parser refuses it
    with pytest.raises(InvalidRequest):
        _auto("llama3_json", tokenizer, [WEATHER])
    # Llama 3.1 names its reserved token 128010 <|python_tag|>
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|python_tag|>"]})
    calling, req = _auto("llama3_json", tokenizer, [WEATHER, TIME])
    text = (
        '{"name": "get_weather", "parameters": {"city": "Paris"}}; '
        '{"name": "get_time", "parameters": {}}'
    )
    content, calls = calling.output(req).result(text)  # type: ignore[union-attr]
    assert content is None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    _, by_index = gather(stream(calling.output(req), tokenizer, text))
    assert [(c["name"], json.loads(c["arguments"])) for c in by_index.values()] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
