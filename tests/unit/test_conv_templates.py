"""The registry templates: golden prompts for every family, edge cases, bad input, the registry.

The golden strings are the spec. Each was checked against the `source` its template names
(model card, reference code or FastChat's record); a new template fails
`test_golden_prompt` until its golden string is written here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from conv_templates import (
    ChatTemplate,
    ConversationTemplate,
    NameRule,
    Registry,
    Template,
    TemplateError,
    get_template,
    list_templates,
    resolve_template,
)
from conv_templates.table import RULES, TEMPLATES

SYSTEM = "You are a terse assistant."
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello. How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
ALPACA_LIKE = (
    "You are a terse assistant.\n\n"
    "### Instruction:\nHi!\n\n"
    "### Response:Hello. How can I help?</s>"
    "### Instruction:\nWhat is 2+2?\n\n"
    "### Response:"
)
LLAMA_2_LIKE = (
    "[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHi! [/INST]"
    " Hello. How can I help? </s><s>"
    "[INST] What is 2+2? [/INST]"
)

# System message + two user turns (one answered) + the generation prompt, for every template.
GOLDEN: dict[str, str] = {
    "raw": "You are a terse assistant.Hi!Hello. How can I help?What is 2+2?",
    "vicuna_v0": (
        "You are a terse assistant.\n"
        "### Human: Hi!\n"
        "### Assistant: Hello. How can I help?\n"
        "### Human: What is 2+2?\n"
        "### Assistant:"
    ),
    "vicuna_v1.1": (
        "You are a terse assistant. "
        "USER: Hi! ASSISTANT: Hello. How can I help?</s>"
        "USER: What is 2+2? ASSISTANT:"
    ),
    "alpaca": ALPACA_LIKE,
    "open-alpaca": ALPACA_LIKE,
    "gpt4-x-alpaca": ALPACA_LIKE,
    "gpt4-x-vicuna": ALPACA_LIKE,
    "chinese-alpaca": (
        "You are a terse assistant.\n\n"
        "### Instruction:\nHi!\n\n"
        "### Response: Hello. How can I help?\n\n"
        "### Instruction:\nWhat is 2+2?\n\n"
        "### Response: "
    ),
    "chinese-alpaca-2": (
        "[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHi! [/INST]"
        " Hello. How can I help?</s><s>"
        "[INST] What is 2+2? [/INST]"
    ),
    "llama-2-chat": LLAMA_2_LIKE,
    "chinese-vicuna": (
        "You are a terse assistant.\n\n"
        "User:Hi!\n\n"
        "Assistant:Hello. How can I help?\n\n"
        "User:What is 2+2?\n\n"
        "Assistant:"
    ),
    # The first BELLE generation, as its model cards prompt it.
    "belle": (
        "You are a terse assistant.\n\n"
        "Human: Hi!\n\n"
        "Assistant: Hello. How can I help?\n\n"
        "Human: What is 2+2?\n\n"
        "Assistant:"
    ),
    # BELLE's training code since issue 337 (BELLE-Llama2 / BELLE-2).
    "belle-2": (
        "You are a terse assistant.\n\n"
        "Human: \nHi!\n\n"
        "Assistant: \nHello. How can I help?</s>"
        "Human: \nWhat is 2+2?\n\n"
        "Assistant: \n"
    ),
    "baichuan-chat": (
        "You are a terse assistant."
        "<reserved_102>Hi!<reserved_103>Hello. How can I help?"
        "<reserved_102>What is 2+2?<reserved_103>"
    ),
    "baichuan2-chat": (
        "You are a terse assistant."
        "<reserved_106>Hi!<reserved_107>Hello. How can I help?"
        "<reserved_106>What is 2+2?<reserved_107>"
    ),
    "openbuddy": (
        "You are a terse assistant.\n\n"
        "User: Hi!\n"
        "Assistant: Hello. How can I help?\n"
        "User: What is 2+2?\n"
        "Assistant:"
    ),
    "wizardlm": (
        "You are a terse assistant.\n\n"
        "Hi!\n\n### Response:Hello. How can I help?</s>"
        "What is 2+2?\n\n### Response:"
    ),
    "tulu": (
        "<|system|>\nYou are a terse assistant.\n"
        "<|user|>\nHi!\n"
        "<|assistant|>\nHello. How can I help?</s>\n"
        "<|user|>\nWhat is 2+2?\n"
        "<|assistant|>\n"
    ),
    "gpt4all": (
        "### Instruction:\nYou are a terse assistant.\n"
        "### Prompt: Hi!\n"
        "### Response: Hello. How can I help?\n"
        "### Prompt: What is 2+2?\n"
        "### Response:"
    ),
    "koala": (
        "You are a terse assistant. "
        "USER: Hi! GPT: Hello. How can I help?</s>"
        "USER: What is 2+2? GPT:"
    ),
    # pygmalion-6b/7b cards: persona, <START>, "You:" turns.
    "pygmalion": (
        "Assistant's Persona: You are a terse assistant.\n<START>\n"
        "You: Hi!\n"
        "Assistant: Hello. How can I help?\n"
        "You: What is 2+2?\n"
        "Assistant:"
    ),
    "metharme": (
        "<|system|>You are a terse assistant."
        "<|user|>Hi!<|model|>Hello. How can I help?"
        "<|user|>What is 2+2?<|model|>"
    ),
    "nous-hermes": (
        "You are a terse assistant.\n\n"
        "### Instruction:\nHi!\n\n"
        "### Response:\nHello. How can I help?</s>"
        "### Instruction:\nWhat is 2+2?\n\n"
        "### Response:\n"
    ),
    "wizardmath": (
        "You are a terse assistant.\n\n"
        "### Instruction:\nHi!\n\n"
        "### Response:Hello. How can I help?</s>"
        "### Instruction:\nWhat is 2+2?\n\n"
        "### Response: Let's think step by step."
    ),
    "llama2-chinese": (
        "You are a terse assistant.\n"
        "Human: Hi!\n</s><s>"
        "Assistant: Hello. How can I help?\n</s><s>"
        "Human: What is 2+2?\n</s><s>"
        "Assistant: "
    ),
    "llama2-uncensored": (
        "You are a terse assistant.\n\n"
        "### HUMAN:\nHi!\n\n"
        "### RESPONSE:\nHello. How can I help?\n\n"
        "### HUMAN:\nWhat is 2+2?\n\n"
        "### RESPONSE:\n"
    ),
    "baize": (
        "You are a terse assistant.\n"
        "[|Human|]Hi!\n"
        "[|AI|]Hello. How can I help?\n"
        "[|Human|]What is 2+2?\n"
        "[|AI|]"
    ),
    "stable-vicuna": (
        "You are a terse assistant.\n\n"
        "### Human: Hi!\n"
        "### Assistant: Hello. How can I help?\n\n"
        "### Human: What is 2+2?\n"
        "### Assistant:"
    ),
    "stack-llama": (
        "You are a terse assistant.\n\n"
        "Question: Hi!\n\n"
        "Answer: Hello. How can I help?</s>"
        "Question: What is 2+2?\n\n"
        "Answer: "
    ),
    "llama-3-instruct": (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a terse assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello. How can I help?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "chatml": (
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # Qwen's rows differ from chatml only in their default system prompt.
    "qwen-chat": (
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "qwen2.5": (
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello. How can I help?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "mistral-instruct": (
        "[INST] You are a terse assistant.\n\nHi! [/INST] Hello. How can I help?</s>"
        "[INST] What is 2+2? [/INST]"
    ),
    "zephyr": (
        "<|system|>\nYou are a terse assistant.</s>\n"
        "<|user|>\nHi!</s>\n"
        "<|assistant|>\nHello. How can I help?</s>\n"
        "<|user|>\nWhat is 2+2?</s>\n"
        "<|assistant|>\n"
    ),
}

REQUIRED_FAMILIES = {
    "vicuna_v0", "vicuna_v1.1", "alpaca", "baichuan-chat", "baichuan2-chat", "chinese-alpaca",
    "chinese-alpaca-2", "chinese-vicuna", "belle", "belle-2", "openbuddy", "wizardlm", "tulu",
    "gpt4all", "koala", "pygmalion", "metharme", "baize", "stable-vicuna", "stack-llama",
    "open-alpaca", "gpt4-x-alpaca", "gpt4-x-vicuna", "llama-2-chat", "llama-3-instruct",
    "chatml", "qwen-chat", "mistral-instruct", "zephyr", "raw",
}  # fmt: skip

NAMES = [template.name for template in list_templates()]


def _with(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


@pytest.mark.parametrize("name", NAMES)
def test_golden_prompt(name: str) -> None:
    assert name in GOLDEN, f"template {name!r} has no golden string in this file: add one"
    assert get_template(name).render(CONVERSATION) == GOLDEN[name]


def test_golden_strings_belong_to_registered_templates() -> None:
    assert sorted(GOLDEN) == NAMES


def test_required_families_are_registered() -> None:
    assert REQUIRED_FAMILIES <= set(NAMES)


def test_list_templates_is_sorted_by_name() -> None:
    assert NAMES == sorted(NAMES)
    assert all(isinstance(template, Template) for template in list_templates())


@pytest.mark.parametrize("name", NAMES)
def test_no_prompt_starts_with_bos(name: str) -> None:
    prompt = get_template(name).render(CONVERSATION[1:])
    assert not prompt.startswith(("<s>", "<|begin_of_text|>"))


def test_llama_2_later_turns_carry_literal_eos_bos() -> None:
    prompt = get_template("llama-2-chat").render(CONVERSATION)
    assert prompt.count("</s><s>") == 1
    assert prompt.count("[INST]") == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "vicuna_v1.1",
            "A chat between a curious user and an artificial intelligence assistant. The "
            "assistant gives helpful, detailed, and polite answers to the user's questions. "
            "USER: Hi! ASSISTANT:",
        ),
        ("llama-2-chat", "[INST] Hi! [/INST]"),
        (
            "chinese-alpaca-2",
            "[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\n"
            "Hi! [/INST]",
        ),
        (
            "alpaca",
            "Below is an instruction that describes a task. Write a response that "
            "appropriately completes the request.\n\n### Instruction:\nHi!\n\n### Response:",
        ),
        (
            "llama-3-instruct",
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        ("chatml", "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"),
        (
            "qwen-chat",
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            "qwen2.5",
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        ),
        ("pygmalion", "You: Hi!\nAssistant:"),
        ("belle", "Human: Hi!\n\nAssistant:"),
        ("belle-2", "Human: \nHi!\n\nAssistant: \n"),
        ("mistral-instruct", "[INST] Hi! [/INST]"),
        ("koala", "BEGINNING OF CONVERSATION: USER: Hi! GPT:"),
        ("baichuan2-chat", "<reserved_106>Hi!<reserved_107>"),
        ("raw", "Hi!"),
    ],
)
def test_without_system_message_the_default_is_used(name: str, expected: str) -> None:
    assert get_template(name).render(_with(("user", "Hi!"))) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vicuna_v1.1", "USER: Hi! ASSISTANT:"),
        ("alpaca", "### Instruction:\nHi!\n\n### Response:"),
        ("chinese-alpaca-2", "[INST] Hi! [/INST]"),
    ],
)
def test_an_empty_system_message_drops_the_default(name: str, expected: str) -> None:
    assert get_template(name).render(_with(("system", ""), ("user", "Hi!"))) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vicuna_v1.1", "USER: What is 2+2? ASSISTANT: The answer is"),
        ("llama-2-chat", "[INST] What is 2+2? [/INST] The answer is"),
        (
            "llama-3-instruct",
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nThe answer is",
        ),
        (
            "chatml",
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nThe answer is",
        ),
        ("zephyr", "<|user|>\nWhat is 2+2?</s>\n<|assistant|>\nThe answer is"),
        ("baichuan-chat", "<reserved_102>What is 2+2?<reserved_103>The answer is"),
        ("raw", "What is 2+2?The answer is"),
    ],
)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_trailing_assistant_message_is_a_prefix_to_continue(
    name: str, expected: str, add_generation_prompt: bool
) -> None:
    messages = _with(("system", ""), ("user", "What is 2+2?"), ("assistant", "The answer is"))
    prompt = get_template(name).render(messages, add_generation_prompt=add_generation_prompt)
    assert prompt == expected


def test_trailing_prefix_after_history_keeps_earlier_turn_ends() -> None:
    messages = [*CONVERSATION, {"role": "assistant", "content": "It is"}]
    prompt = get_template("vicuna_v1.1").render(messages)
    assert prompt == (
        "You are a terse assistant. USER: Hi! ASSISTANT: Hello. How can I help?</s>"
        "USER: What is 2+2? ASSISTANT: It is"
    )


@pytest.mark.parametrize("name", ["vicuna_v1.1", "llama-3-instruct", "chatml", "llama-2-chat"])
def test_an_empty_trailing_assistant_message_renders_the_generation_prompt(name: str) -> None:
    template = get_template(name)
    asked = template.render(_with(("user", "Hi!")))
    assert template.render(_with(("user", "Hi!"), ("assistant", ""))) == asked


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vicuna_v1.1", "USER: Hi! "),
        ("llama-2-chat", "[INST] Hi! [/INST]"),
        ("chatml", "<|im_start|>user\nHi!<|im_end|>\n"),
        ("llama-3-instruct", "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"),
    ],
)
def test_without_generation_prompt_the_user_turn_ends_the_prompt(name: str, expected: str) -> None:
    prompt = get_template(name).render(
        _with(("system", ""), ("user", "Hi!")), add_generation_prompt=False
    )
    assert prompt == expected


def test_system_message_alone() -> None:
    assert get_template("chatml").render(_with(("system", "Be brief."))) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert get_template("llama-2-chat").render(_with(("system", "Be brief."))) == (
        "[INST] <<SYS>>\nBe brief.\n<</SYS>> [/INST]"
    )


def test_llama_family_strips_content_like_the_reference_code() -> None:
    messages = _with(("system", "  Be brief. "), ("user", "  Hi! "))
    # Meta strips "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user as one string.
    assert get_template("llama-2-chat").render(messages) == (
        "[INST] <<SYS>>\n  Be brief. \n<</SYS>>\n\n  Hi! [/INST]"
    )
    llama_3 = get_template("llama-3-instruct").render(messages)
    assert llama_3.startswith(
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
    )
    continued = [*messages, {"role": "assistant", "content": " Sure, "}]
    # Meta's template writes " " after a reply, so a continued prefix keeps its trailing space;
    # Llama-3's writes <|eot_id|>, so there it goes (as transformers' continue_final_message).
    assert get_template("llama-2-chat").render(continued).endswith("[/INST] Sure, ")
    assert get_template("llama-3-instruct").render(continued).endswith("\n\nSure,")
    assert get_template("vicuna_v1.1").render(messages) == "  Be brief.  USER:   Hi!  ASSISTANT:"


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "messages must not be empty"),
        ("Hi!", "messages must be a list"),
        ({"role": "user", "content": "Hi!"}, "messages must be a list"),
        (["Hi!"], r"messages\[0\] must be an object with 'role' and 'content'"),
        ([{"role": "tool", "content": "x"}], r"messages\[0\]\.role must be 'system', 'user'"),
        ([{"content": "x"}], r"messages\[0\]\.role must be .* got None"),
        ([{"role": "user", "content": None}], r"messages\[0\]\.content must be a string"),
        (
            [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
            r"messages\[0\]\.content must be a string, got list",
        ),
        (
            [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}],
            r"messages\[1\]: a system message is only allowed first",
        ),
    ],
)
@pytest.mark.parametrize("name", ["vicuna_v1.1", "llama-2-chat", "raw", "hf"])
def test_bad_input_raises_template_error(name: str, messages: Any, message: str) -> None:
    template: Template
    if name == "hf":
        template = ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}")
    else:
        template = get_template(name)
    with pytest.raises(TemplateError, match=message):
        template.render(messages)


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize("name", NAMES)
def test_every_template_describes_itself_as_json(name: str) -> None:
    template = get_template(name)
    described = json.loads(json.dumps(template.describe()))
    assert described["name"] == name
    assert described["source"] == template.source
    assert described["system_message"] == template.system_message
    assert set(described["roles"]) == {"user", "assistant"}
    assert described["separators"]["generation_prompt"] == template.generation_prefix
    assert described["stop_strings"] == list(template.stop_strings)
    assert described["stop_token_ids"] == list(template.stop_token_ids)


@pytest.mark.parametrize("name", NAMES)
def test_every_template_names_its_source_on_one_line(name: str) -> None:
    source = get_template(name).source
    assert source.strip() and "\n" not in source


@pytest.mark.parametrize("name", NAMES)
def test_no_template_carries_an_example_conversation(name: str) -> None:
    """Only the system block and the request's own turns are rendered."""
    template = get_template(name)
    prompt = template.render(_with(("user", "Hi!")))
    block = template.system_format.replace("{system}", template.system_message.strip())
    system = block if template.system_message else ""
    if template.system_in_first_user:
        turn = template.user_prefix + system + "Hi!" + template.user_suffix
    else:
        turn = system + template.user_prefix + "Hi!" + template.user_suffix
    assert prompt == turn + template.generation_prefix
    # A canned exchange would put both speakers at line starts inside the default system text.
    markers = [p.strip() for p in (template.user_prefix, template.assistant_prefix) if p.strip()]
    if len(markers) == 2:
        at_line_start = [
            re.search(rf"(?m)^{re.escape(m)}", template.system_message) for m in markers
        ]
        assert not all(at_line_start), f"{name}: default system text holds a conversation"


def test_stop_token_ids_are_in_the_family_vocabulary() -> None:
    assert get_template("llama-3-instruct").stop_token_ids == (128001, 128009)
    assert get_template("zephyr").stop_token_ids == (2,)
    assert get_template("chatml").stop_token_ids == ()  # ids differ between ChatML vocabularies


def test_get_template_is_case_insensitive() -> None:
    assert get_template("Vicuna_V1.1").name == "vicuna_v1.1"
    assert get_template(" llama-2-chat ").name == "llama-2-chat"


def test_unknown_template_name_lists_close_names() -> None:
    with pytest.raises(TemplateError, match=r"unknown conversation template 'vicuna'.*vicuna_v"):
        get_template("vicuna")
    with pytest.raises(TemplateError, match="unknown conversation template 'nope'"):
        get_template("nope")


def _row(name: str) -> ConversationTemplate:
    return ConversationTemplate(name=name, source="test", roles=("u", "a"))


def test_registry_rejects_duplicate_template_names() -> None:
    with pytest.raises(ValueError, match="duplicate template name 'raw'"):
        Registry([_row("raw"), _row("raw")], [])


def test_registry_rejects_rules_with_the_same_tokens() -> None:
    rules = [NameRule("llama-2-chat", "raw"), NameRule("Llama_2 Chat", "raw")]
    with pytest.raises(ValueError, match="repeats rule 'llama-2-chat'"):
        Registry([_row("raw")], rules)


def test_registry_rejects_rules_for_unknown_templates() -> None:
    with pytest.raises(ValueError, match="unknown template 'nope'"):
        Registry([_row("raw")], [NameRule("x", "nope")])


def test_registry_needs_raw_and_keeps_reserved_names() -> None:
    with pytest.raises(ValueError, match="needs a 'raw' template"):
        Registry([_row("other")], [])
    with pytest.raises(ValueError, match="reserved"):
        Registry([_row("raw"), _row("hf-chat-template")], [])


def test_default_table_builds_a_registry() -> None:
    registry = Registry(TEMPLATES, RULES)
    assert registry.names() == NAMES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"system_format": "no placeholder"}, "must contain {system}"),
        ({"source": "two\nlines"}, "source must be one non-empty line"),
        ({"name": "has space"}, "without spaces"),
        ({"stop_token_ids": (-1,)}, "non-negative ints"),
        ({"stop_strings": ("",)}, "non-empty strings"),
    ],
)
def test_template_rows_are_checked(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(get_template("vicuna_v1.1"), **change)


# resolve_template: explicit > chat_template > name rule > raw.

CHATML_JINJA = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_explicit_name_wins_over_everything() -> None:
    resolution = resolve_template(
        explicit="koala",
        names=["lmsys/vicuna-7b-v1.5"],
        chat_template=CHATML_JINJA,
        special_tokens={},
    )
    assert (resolution.template.name, resolution.reason, resolution.rule) == (
        "koala",
        "explicit",
        None,
    )


def test_explicit_unknown_name_is_an_error() -> None:
    with pytest.raises(TemplateError, match="unknown conversation template"):
        resolve_template(explicit="vicuna-2", names=["x"], chat_template=None, special_tokens={})


def test_explicit_hf_chat_template_needs_one() -> None:
    resolution = resolve_template(
        explicit="hf-chat-template",
        names=["x"],
        chat_template=CHATML_JINJA,
        special_tokens={},
    )
    assert (resolution.template.name, resolution.reason) == ("hf-chat-template", "explicit")
    with pytest.raises(TemplateError, match="has no chat_template"):
        resolve_template(
            explicit="hf-chat-template", names=["x"], chat_template=None, special_tokens={}
        )


def test_chat_template_wins_over_name_rules() -> None:
    resolution = resolve_template(
        explicit=None,
        names=["lmsys/vicuna-7b-v1.5"],
        chat_template=CHATML_JINJA,
        special_tokens={"bos_token": "<s>", "eos_token": "</s>"},
    )
    assert resolution.reason == "chat_template"
    assert isinstance(resolution.template, ChatTemplate)
    assert resolution.template.render(_with(("user", "Hi!"))) == (
        "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"
    )


def test_name_rule_then_fallback(caplog: pytest.LogCaptureFixture) -> None:
    resolution = resolve_template(
        explicit=None,
        names=["meta-llama/Llama-2-7b-chat-hf"],
        chat_template=None,
        special_tokens={},
    )
    assert (resolution.template.name, resolution.reason, resolution.rule) == (
        "llama-2-chat",
        "name_rule",
        "llama-2-chat",
    )
    with caplog.at_level("WARNING", logger="conv_templates"):
        resolution = resolve_template(
            explicit=None, names=["acme/mystery-7b"], chat_template=None, special_tokens={}
        )
    assert (resolution.template.name, resolution.reason, resolution.rule) == (
        "raw",
        "fallback_raw",
        None,
    )
    assert "acme/mystery-7b" in caplog.text


def test_an_empty_chat_template_counts_as_absent() -> None:
    resolution = resolve_template(
        explicit=None, names=["lmsys/vicuna-7b-v1.5"], chat_template="  ", special_tokens={}
    )
    assert (resolution.template.name, resolution.reason) == ("vicuna_v1.1", "name_rule")


def test_the_first_name_a_rule_matches_decides_without_a_false_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="conv_templates"):
        by_path = resolve_template(
            explicit=None,
            names=["lmsys/vicuna-7b-v1.5", "meta-llama/Llama-2-7b-chat-hf"],
            chat_template=None,
            special_tokens={},
        )
        by_served_name = resolve_template(
            explicit=None,
            names=["/models/checkpoint-1200", "lmsys/vicuna-7b-v1.5"],
            chat_template=None,
            special_tokens={},
        )
        by_chat_template = resolve_template(
            explicit=None,
            names=["/models/checkpoint-1200", "mystery"],
            chat_template=CHATML_JINJA,
            special_tokens={},
        )
    assert (by_path.template.name, by_path.reason) == ("vicuna_v1.1", "name_rule")
    assert (by_served_name.template.name, by_served_name.reason) == ("vicuna_v1.1", "name_rule")
    assert by_chat_template.reason == "chat_template"
    assert "no conversation template rule" not in caplog.text


def test_a_model_no_rule_matches_is_warned_about_once_by_all_its_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="conv_templates"):
        resolution = resolve_template(
            explicit=None,
            names=["/models/mystery", "mystery"],
            chat_template=None,
            special_tokens={},
        )
    assert resolution.reason == "fallback_raw"
    warnings = [r.getMessage() for r in caplog.records if "no conversation template" in r.message]
    assert len(warnings) == 1 and "'/models/mystery' or 'mystery'" in warnings[0]
