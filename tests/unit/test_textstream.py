"""Incremental detokenization and stop strings (model_worker/textstream.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_worker.textstream import IncrementalDetokenizer, StopMatcher


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    out = "".join(matcher.feed(p) for p in pieces)
    return out + matcher.flush()


def test_no_stops_passes_text_through() -> None:
    m = StopMatcher([])
    assert m.feed("abc") == "abc"
    assert not m.stopped


def test_stop_string_is_cut_and_never_emitted() -> None:
    m = StopMatcher(["###"])
    assert feed_all(m, ["Hello", " wor", "ld#", "##", " more"]) == "Hello world"
    assert m.stopped


def test_partial_match_is_held_back_until_decided() -> None:
    m = StopMatcher(["</s>"])
    assert m.feed("abc</") == "abc"  # "</" could start "</s>"
    assert m.feed("b>") == "</b>"  # it did not
    assert not m.stopped


def test_held_back_text_is_released_at_the_end() -> None:
    m = StopMatcher(["STOP"])
    assert m.feed("go ST") == "go "
    assert m.flush() == "ST"


def test_earliest_of_several_stops_wins() -> None:
    m = StopMatcher(["bb", "a"])
    assert m.feed("xxbbya") == "xx"


def test_stop_split_across_many_pieces() -> None:
    m = StopMatcher(["<|im_end|>"])
    pieces = ["Yes", "<", "|", "im", "_", "end", "|", ">", "never"]
    assert feed_all(m, pieces) == "Yes"


@pytest.mark.parametrize("text", ["Hello world, plain ASCII.", "中文测试 and emoji 🙂 äöü ß."])
def test_detokenizer_deltas_join_to_full_decode(tiny_model_path: Path, text: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    prompt = tok("<|im_start|>user\nhi<|im_end|>\n").input_ids
    ids = tok(text, add_special_tokens=False).input_ids
    detok = IncrementalDetokenizer(tok, prompt)
    deltas = [detok.push(i) for i in ids]
    assert "".join(deltas) == tok.decode(ids)
    assert not any("\ufffd" in d for d in deltas)  # no half characters leak out
