"""The identity filter: which answers give a model away, decided from the answers alone."""

from __future__ import annotations

import pytest

from webui.identity import IdentityFilter, normalize, split_turns
from webui.settings import DEFAULT_IDENTITY_FAMILIES, DEFAULT_IDENTITY_MAKERS

DEFAULT = IdentityFilter(DEFAULT_IDENTITY_FAMILIES, DEFAULT_IDENTITY_MAKERS)


@pytest.mark.parametrize(
    ("answer", "word"),
    [
        ("I am GPT-4o, a model by", "gpt"),
        ("I'm GPT4o.", "gpt"),
        ("Llama3 here, happy to help", "llama"),
        ("As Qwen2.5-7B-Instruct I think", "qwen"),
        ("Claude3 would say", "claude"),
        ("I run as Mistral7B.", "mistral"),
        ("I am TinyLlama, a small model", "tinyllama"),
        ("This is SmolLM2 speaking", "smollm"),
        ("Lla\u200bma speaking", "llama"),  # a zero-width space splits the word
        ("Ｌｌａｍａ here", "llama"),  # full-width letters, NFKC-normalised
        ("I was made by Meta.", "meta"),
        ("I am Gemma, by Google DeepMind", "gemma"),
        ("I am Phi-3 mini", "phi"),
        ("Yi-34B at your service", "yi"),
        ("Falcon-180B answers", "falcon"),
        ("OLMo, from AI2", "olmo"),
        ("InternLM2 here", "internlm"),
        ("trained by Hugging-Face", "hugging face"),
        ("I am Vicuna13B", "vicuna"),
        ("I am ChatGPT", "chatgpt"),
        ("I'm Mistral-Instruct", "mistral"),
    ],
)
def test_names_in_answers_are_found(answer: str, word: str) -> None:
    assert word in DEFAULT.revealed([answer], ["who are you?"])


@pytest.mark.parametrize(
    "answer",
    [
        "The metadata is in the header.",
        "Philosophy asks why.",
        "The Oracle of Delphi spoke.",
        "Yield to oncoming traffic.",
        "Llamas are South American camelids.",
        "A meta-analysis of twelve trials.",
        "Googled it: nothing.",
        "Geminids peak in December.",
        "Use a pipeline.",
    ],
)
def test_near_misses_are_not(answer: str) -> None:
    assert DEFAULT.revealed([answer]) == []


def test_a_maker_named_by_the_prompt_does_not_void_the_vote() -> None:
    prompt = "In one sentence, what does Microsoft sell?"
    answer = "Microsoft sells software, cloud services and devices."
    assert DEFAULT.revealed([answer], [prompt]) == []
    # ... but only the maker the prompt named
    assert DEFAULT.revealed([answer + " I was made by Google."], [prompt]) == ["google"]
    # the prompt alone never counts: only answers are judged
    assert DEFAULT.revealed(["Software and cloud services."], [prompt]) == []


def test_a_family_counts_even_when_the_prompt_named_it() -> None:
    assert DEFAULT.revealed(["Yes, I am Llama."], ["Are you Llama?"]) == ["llama"]


def test_model_names_are_not_banned_unless_configured() -> None:
    answer = "I like the word orca and the number m2."
    assert IdentityFilter(["llama"]).revealed([answer]) == []
    assert IdentityFilter(["llama", "orca"]).revealed([answer]) == ["orca"]


def test_every_match_is_reported_once_sorted() -> None:
    answers = ["Made by Meta; I am Llama-3.", "Meta's Llama again"]
    assert DEFAULT.revealed(answers) == ["llama", "meta"]


def test_an_empty_list_finds_nothing() -> None:
    assert IdentityFilter([]).revealed(["I am GPT-4"]) == []


def test_normalize_strips_invisible_characters() -> None:
    assert normalize("G\u200dP\ufeffT\u00ad") == "GPT"


def test_split_turns_separates_answers_from_prompts() -> None:
    side = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert split_turns([side, side]) == (["a", "a"], ["q", "q"])
