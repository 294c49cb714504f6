"""Rendered prompts through the real LLaMA tokenizers: special tokens land on the right ids.

The tokenizers are transformers' conversions of llama.cpp's vocab-only GGUF files (see
tests/fixtures/fetch_llama_vocab.py), set up the way llama.cpp uses those vocabularies: BOS
added in front (the GGUF's add_bos_token), and for LLaMA's SentencePiece vocab a word-start
"▁" before text that follows a special token, as llama.cpp, sentencepiece on Meta's per-turn
pieces and the official HF Llama-2 tokenizer all do (transformers' GGUF conversion does neither:
it adds no BOS and prefixes only the start of the whole text).

The expected ids are built the way Meta's reference code builds them: Llama-2's
`chat_completion` encodes each [INST] exchange separately with BOS and EOS, and Llama-3's
`ChatFormat.encode_dialog_prompt` assembles header and end-of-turn ids around each message.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tokenizers import Tokenizer, pre_tokenizers, processors

from conv_templates import ChatTemplate, get_template

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hi!"},
    {"role": "assistant", "content": "Hello. How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
SPM_BOS, SPM_EOS = 1, 2
BEGIN_OF_TEXT, END_OF_TEXT, EOT = 128000, 128001, 128009
START_HEADER, END_HEADER = 128006, 128007


def _fixtures_module() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "fetch_llama_vocab.py"
    spec = importlib.util.spec_from_file_location("fetch_llama_vocab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURES = _fixtures_module()


@pytest.fixture(scope="module")
def spm() -> Tokenizer:
    """LLaMA-1/2 (SentencePiece, 32000 tokens), as llama.cpp tokenizes with it."""
    FIXTURES.require_fixtures()
    tokenizer = Tokenizer.from_file(str(FIXTURES.tokenizer_file("ggml-vocab-llama-spm.gguf")))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=False
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", SPM_BOS)]
    )
    return tokenizer


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    """Llama-3 (tiktoken-style BPE, 128256 tokens) with BOS added like Meta's tokenizer.json."""
    FIXTURES.require_fixtures()
    tokenizer = Tokenizer.from_file(str(FIXTURES.tokenizer_file("ggml-vocab-llama-bpe.gguf")))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", BEGIN_OF_TEXT)]
    )
    return tokenizer


def _ids(tokenizer: Tokenizer, text: str, *, special: bool = True) -> list[int]:
    ids: list[int] = tokenizer.encode(text, add_special_tokens=special).ids
    return ids


# LLaMA-1/2 vocabulary.


@pytest.mark.parametrize(("text", "ids"), [("<s>", [1]), ("</s>", [2]), ("<unk>", [0])])
def test_spm_special_tokens_are_single_ids(spm: Tokenizer, text: str, ids: list[int]) -> None:
    assert _ids(spm, text, special=False) == ids


def test_spm_inst_markers_are_plain_text(spm: Tokenizer) -> None:
    """Llama-2 has no [INST] token: the markers are ordinary pieces, "▁[" "INST" "]"."""
    assert spm.token_to_id("[INST]") is None
    assert _ids(spm, "[INST]", special=False) == [518, 25580, 29962]
    assert _ids(spm, "[/INST]", special=False) == [518, 29914, 25580, 29962]
    assert spm.token_to_id("<<SYS>>") is None


def _meta_llama_2_reference(tokenizer: Tokenizer, messages: list[dict[str, Any]]) -> list[int]:
    """meta-llama/llama generation.py chat_completion, for [system?, user, (assistant, user)*]."""
    b_inst, e_inst, b_sys, e_sys = "[INST]", "[/INST]", "<<SYS>>\n", "\n<</SYS>>\n\n"
    if messages[0]["role"] == "system":
        first = {"role": "user", "content": b_sys + messages[0]["content"] + e_sys}
        first["content"] += messages[1]["content"]
        messages = [first, *messages[2:]]
    ids: list[int] = []
    for prompt, answer in zip(messages[::2], messages[1::2], strict=False):
        text = f"{b_inst} {prompt['content'].strip()} {e_inst} {answer['content'].strip()} "
        ids += [SPM_BOS, *_ids(tokenizer, text, special=False), SPM_EOS]
    text = f"{b_inst} {messages[-1]['content'].strip()} {e_inst}"
    return [*ids, SPM_BOS, *_ids(tokenizer, text, special=False)]


def test_llama_2_prompt_tokenizes_like_metas_reference(spm: Tokenizer) -> None:
    template = get_template("llama-2-chat")
    ids = _ids(spm, template.render(CONVERSATION))
    assert ids == _meta_llama_2_reference(spm, CONVERSATION)
    assert ids[0] == SPM_BOS and ids[1] != SPM_BOS  # exactly one BOS in front
    assert ids.count(SPM_BOS) == 2 and ids.count(SPM_EOS) == 1  # the literal "</s><s>"
    single_turn = CONVERSATION[:2]
    assert _ids(spm, template.render(single_turn)) == _meta_llama_2_reference(spm, single_turn)


@pytest.mark.parametrize(
    "name", ["vicuna_v1.1", "alpaca", "koala", "tulu", "zephyr", "belle-2", "stack-llama"]
)
def test_literal_eos_in_prompts_becomes_the_eos_id(spm: Tokenizer, name: str) -> None:
    template = get_template(name)
    ids = _ids(spm, template.render(CONVERSATION))
    assert ids[0] == SPM_BOS and SPM_BOS not in ids[1:]
    assert ids.count(SPM_EOS) == template.render(CONVERSATION).count("</s>") >= 1
    assert "</s>" not in spm.decode(ids, skip_special_tokens=True)


def test_zephyr_stop_id_is_the_eos_of_the_llama_vocabulary(spm: Tokenizer) -> None:
    assert get_template("zephyr").stop_token_ids == (spm.token_to_id("</s>"),)


def test_vicuna_turn_end_tokenizes_like_fastchat_training(spm: Tokenizer) -> None:
    ids = _ids(spm, get_template("vicuna_v1.1").render(CONVERSATION))
    end = ids.index(SPM_EOS)
    assert spm.decode(ids[end + 1 :]).startswith("USER: What is 2+2? ASSISTANT:")
    assert spm.id_to_token(ids[end + 1]) == "▁US"  # a word start after </s>, as in training


# Llama-3 vocabulary.


@pytest.mark.parametrize(
    ("text", "token_id"),
    [
        ("<|begin_of_text|>", BEGIN_OF_TEXT),
        ("<|end_of_text|>", END_OF_TEXT),
        ("<|eot_id|>", EOT),
        ("<|start_header_id|>", START_HEADER),
        ("<|end_header_id|>", END_HEADER),
    ],
)
def test_llama_3_special_tokens_are_single_ids(bpe: Tokenizer, text: str, token_id: int) -> None:
    assert _ids(bpe, text, special=False) == [token_id]


def test_llama_3_stop_ids_are_end_of_text_and_eot(bpe: Tokenizer) -> None:
    expected = (bpe.token_to_id("<|end_of_text|>"), bpe.token_to_id("<|eot_id|>"))
    assert get_template("llama-3-instruct").stop_token_ids == expected


def _meta_llama_3_reference(tokenizer: Tokenizer, messages: list[dict[str, Any]]) -> list[int]:
    """meta-llama/llama3 tokenizer.py ChatFormat.encode_dialog_prompt."""

    def header(role: str) -> list[int]:
        role_ids = _ids(tokenizer, role, special=False)
        return [START_HEADER, *role_ids, END_HEADER, *_ids(tokenizer, "\n\n", special=False)]

    ids = [BEGIN_OF_TEXT]
    for message in messages:
        content = _ids(tokenizer, message["content"].strip(), special=False)
        ids += [*header(message["role"]), *content, EOT]
    return ids + header("assistant")


def test_llama_3_prompt_tokenizes_like_metas_reference(bpe: Tokenizer) -> None:
    ids = _ids(bpe, get_template("llama-3-instruct").render(CONVERSATION))
    assert ids == _meta_llama_3_reference(bpe, CONVERSATION)
    assert ids.count(BEGIN_OF_TEXT) == 1 and ids[0] == BEGIN_OF_TEXT
    assert ids.count(EOT) == 4 and ids.count(START_HEADER) == 5


def test_llama_3_hf_template_writes_the_one_bos_itself(bpe: Tokenizer) -> None:
    """The HF template starts with {{ bos_token }}: tokenizing with special tokens doubles it,
    which is why the worker drops a repeated leading BOS."""
    source = (FIXTURES.require_fixtures() / "templates").joinpath(
        "meta-llama-Llama-3.1-8B-Instruct.jinja"
    )
    template = ChatTemplate(
        source.read_text(encoding="utf-8"),
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    )
    prompt = template.render(CONVERSATION)
    plain = _ids(bpe, prompt, special=False)
    assert plain[0] == BEGIN_OF_TEXT and plain.count(BEGIN_OF_TEXT) == 1
    doubled = _ids(bpe, prompt)
    assert doubled[:2] == [BEGIN_OF_TEXT, BEGIN_OF_TEXT] and doubled[1:] == plain
    assert plain[-4:] == [START_HEADER, bpe.token_to_id("assistant"), END_HEADER, 271]
