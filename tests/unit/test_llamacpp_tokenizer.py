"""The llamacpp backend's tokenizer adapter on the real LLaMA vocabularies (vocab-only GGUFs).

What the serving layer needs from it: LLaMA's known ids, special tokens in text parsed to their
ids, decoding that skips them when asked, and streamed (incremental) detokenization that joins
to exactly the whole text, multi-byte characters included (SentencePiece spells them in
byte-fallback tokens).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from requires import require

from model_worker.backends.llamacpp_tokenizer import LlamaCppTokenizer
from model_worker.prompts import special_token_ids
from model_worker.textstream import IncrementalDetokenizer

require("llama_cpp")
TEXT = "Hello world! Ein Test: äöü ß. 中文测试。 emoji 🙂 done"


def _fixtures() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "fetch_llama_vocab.py"
    spec = importlib.util.spec_from_file_location("fetch_llama_vocab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _vocab(name: str) -> Iterator[LlamaCppTokenizer]:
    from llama_cpp import _internals

    folder = _fixtures().require_fixtures()
    params = _internals.LlamaModel.default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=str(folder / name), params=params, verbose=True)
    try:
        yield LlamaCppTokenizer(model.vocab)
    finally:
        model.close()


@pytest.fixture(scope="module")
def spm() -> Iterator[LlamaCppTokenizer]:
    yield from _vocab("ggml-vocab-llama-spm.gguf")


@pytest.fixture(scope="module")
def bpe() -> Iterator[LlamaCppTokenizer]:
    yield from _vocab("ggml-vocab-llama-bpe.gguf")


def test_llama_2_ids_and_special_tokens(spm: LlamaCppTokenizer) -> None:
    assert len(spm) == 32000
    assert (spm.bos_token, spm.bos_token_id, spm.eos_token, spm.eos_token_id) == (
        "<s>",
        1,
        "</s>",
        2,
    )
    assert spm("Hello world")["input_ids"] == [1, 15043, 3186]
    assert spm("Hello world", add_special_tokens=False)["input_ids"] == [15043, 3186]
    assert spm("[INST] Hi [/INST] Yo </s><s>[INST]")["input_ids"].count(2) == 1  # parsed
    assert spm.decode([1, 15043, 3186, 2]) == "<s> Hello world</s>"
    # llama.cpp's detokenizer drops SentencePiece's word-start space only at the very start
    assert spm.decode([1, 15043, 3186, 2], skip_special_tokens=True) == " Hello world"
    assert spm.decode([15043]) == "Hello"


def test_llama_3_ids_and_special_tokens(bpe: LlamaCppTokenizer) -> None:
    ids = bpe("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", add_special_tokens=False)
    assert ids["input_ids"][0] == 128006 and ids["input_ids"][-1] == 128009
    assert bpe("Hi")["input_ids"][0] == 128000  # BOS, as the GGUF asks
    assert special_token_ids(bpe, ["<|eot_id|>", "Hi"]) == [128009]
    assert bpe.decode([128009], skip_special_tokens=True) == ""


@pytest.mark.parametrize("name", ["spm", "bpe"])
def test_streamed_text_joins_to_the_whole(name: str, request: pytest.FixtureRequest) -> None:
    tok: Any = request.getfixturevalue(name)
    prompt = tok("Say:", add_special_tokens=True)["input_ids"]
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    detok = IncrementalDetokenizer(tok, prompt)
    pieces = [detok.push(token) for token in ids]
    assert "".join(pieces).strip() == TEXT
    assert not any("\ufffd" in piece for piece in pieces)  # partial characters held back
