"""Tools in prompts (conv_templates/tools.py): golden strings per family, and which way a model
renders tools (its chat_template, its family row, or not at all)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conv_templates import ChatTemplate, TemplateError, get_template
from conv_templates.tools import HfTools, RowTools, hf_parser, tool_template

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
ROUND_TRIP: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL, {**CALL, "id": "c2"}]},
    {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    {"role": "tool", "content": "warm", "tool_call_id": "c2"},
]
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _tools(name: str) -> RowTools:
    found = tool_template(get_template(name))
    assert isinstance(found, RowTools)
    return found


def test_chatml_renders_tools_calls_and_results_like_qwen_2_5() -> None:
    tools = _tools("chatml")
    assert tools.parser == "hermes"
    assert tools.render(ROUND_TRIP, TOOLS) == (
        "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to "
        "assist with the user query.\n\nYou are provided with function signatures within "
        "<tools></tools> XML tags:\n<tools>\n"
        '{"type": "function", "function": {"name": "get_weather", "description": "Weather", '
        '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}\n'
        "</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n"
        "<tool_response>\nwarm\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chatml_text_before_a_call_and_no_system_prompt() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [CALL]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "Thanks"},
    ]
    prompt = _tools("chatml").render(messages, [])
    assert prompt == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nChecking.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\nSunny.<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama_3_renders_json_tool_calling_like_llama_3_1() -> None:
    tools = _tools("llama-3-instruct")
    assert tools.parser == "llama3_json"
    prompt = tools.render(ROUND_TRIP, TOOLS)
    assert prompt.startswith(
        "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please "
        "respond with a JSON for a function call with its proper arguments that best answers "
        'the given prompt.\n\nRespond in the format {"name": function name, "parameters": '
        "dictionary of argument name and its value}.Do not use variables.\n\n{\n"
        '    "type": "function",\n'
    )
    assert prompt.endswith(
        "}\n\nWeather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        '{"name": "get_weather", "parameters": {"city": "Paris"}}; '
        '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "sunny"}<|eot_id|>'
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": "warm"}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_without_tools_the_tool_format_changes_nothing() -> None:
    plain = [{"role": "user", "content": "Hi"}]
    for name in ("chatml", "qwen2.5", "llama-3-instruct"):
        assert _tools(name).render(plain, []) == get_template(name).render(plain)


def test_families_without_a_tool_format_cannot_render_tools() -> None:
    assert tool_template(get_template("vicuna_v1.1")) is None
    assert tool_template(get_template("llama-2-chat")) is None
    with pytest.raises(TemplateError, match="role"):
        get_template("chatml").render(ROUND_TRIP)  # plain rendering knows no tool role


def test_bad_call_arguments_are_a_template_error() -> None:
    bad = {**CALL, "function": {"name": "get_weather", "arguments": "{not json"}}
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "", "tool_calls": [bad]},
    ]
    with pytest.raises(TemplateError, match=r"messages\[1\]\.tool_calls\[0\]"):
        _tools("chatml").render([*messages, {"role": "user", "content": "y"}], TOOLS)


def test_a_chat_template_without_tools_falls_back_to_its_family_row() -> None:
    """SmolLM2's own chat_template ignores `tools`: its name's ChatML row renders them."""
    smollm2 = ChatTemplate(SMOLLM2)
    found = tool_template(smollm2, ["HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2"])
    assert isinstance(found, RowTools) and found.row.name == "chatml"
    assert found.parser == "hermes"
    assert tool_template(smollm2, ["some-unknown-model"]) is None


def test_parser_override() -> None:
    found = tool_template(get_template("chatml"), parser="qwen3_xml")
    assert found is not None and found.parser == "qwen3_xml"


@pytest.mark.parametrize(
    ("source", "parser"),
    [
        ("{% for t in tools %}<tool_call>{% endfor %}", "hermes"),
        ("{% if tools %}[AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]", "mistral"),
        ('{{ tools }}{"name": "x", "parameters": {}}', "llama3_json"),
    ],
)
def test_the_parser_of_a_chat_template_comes_from_its_format(source: str, parser: str) -> None:
    assert hf_parser(source) == parser
    found = tool_template(ChatTemplate(source))
    assert isinstance(found, HfTools) and found.parser == parser


def test_an_hf_template_gets_tools_and_calls_with_object_arguments() -> None:
    source = (
        "{% for t in tools %}T:{{ t.function.name }}\n{% endfor %}"
        "{% for m in messages %}{{ m.role }}:{{ m.content }}"
        "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.arguments.city }}"
        "</tool_call>{% endfor %}{% if m.tool_call_id %}({{ m.tool_call_id }}){% endif %}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
    )
    found = tool_template(ChatTemplate(source))
    assert found is not None
    assert found.render(ROUND_TRIP[1:4], TOOLS) == (
        "T:get_weather\nuser:Weather in Paris?"
        "assistant:<tool_call>Paris</tool_call><tool_call>Paris</tool_call>"
        "tool:sunny(c1)assistant:"
    )


# The real templates llama.cpp ships (fixtures; skipped when absent).


def _fixtures_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "fetch_llama_vocab.py"
    spec = importlib.util.spec_from_file_location("fetch_llama_vocab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chatml_tools_match_qwen_2_5s_own_chat_template() -> None:
    folder: Path = _fixtures_module().require_fixtures() / "templates"
    qwen = ChatTemplate((folder / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text(encoding="utf-8"))
    own = tool_template(qwen)
    assert isinstance(own, HfTools) and own.parser == "hermes"
    row = _tools("qwen2.5")
    for messages in (ROUND_TRIP, ROUND_TRIP[1:], ROUND_TRIP[1:2]):
        assert own.render(messages, TOOLS) == row.render(messages, TOOLS)
    assert (
        tool_template(
            ChatTemplate(
                (folder / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text(encoding="utf-8")
            )
        )
        is not None
    )
