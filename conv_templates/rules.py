"""Model name -> template rules: the most specific matching rule wins, never the first one.

A rule's pattern is read as a sequence of name tokens: lower-cased, split on every character
that is not a letter or a digit. It matches a model name when its tokens occur in the name's
tokens in that order (other tokens may sit between them), so "llama-2-chat" matches
"Llama-2-7b-chat-hf" but not "Llama-2-7b-hf", and "alpaca" does not match "alpaca2" or
"openalpaca" (whole tokens only).

Rules see only the model's own name (`own_name`), never its owner: "Qwen/Qwen3-8B" is matched
as "Qwen3-8B", so an organisation called Qwen or WizardLM cannot satisfy a rule. The own name
is the last path component that names something: components made only of neutral words
(commit hashes, "snapshots", "checkpoint-1000", "merged", quantisation tags) are skipped, and a
Hugging Face cache folder "models--owner--name" gives "name".

Among the matching rules the winner has the highest (priority, number of tokens, number of
characters); an exact tie falls to the alphabetically first pattern. The result never depends
on the order rules are listed in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_PATH_SEP = re.compile(r"[/\\]")
_HF_CACHE_FOLDER = re.compile(r"^models--[^-]+(?:-[^-]+)*?--(.+)$")

# Tokens that say nothing about which model (or fine-tune) a name is: sizes, versions, file
# formats, quantisation tags, checkpoint folders. A path component made only of these is not a
# model's name; a base-model name may carry them without looking like a fine-tune.
_NEUTRAL_WORDS = frozenset(
    {
        "hf", "gguf", "ggml", "gptq", "awq", "exl2", "safetensors", "bin", "pth", "pt",
        "model", "models", "snapshots", "checkpoint", "checkpoints", "ckpt", "step",
        "global", "main", "latest", "final", "merged", "base", "pretrained", "fp16", "fp32",
        "bf16", "f16", "f32", "int4", "int8", "k", "m", "s", "l", "xs", "xl", "nl",
    }
)  # fmt: skip
_NEUTRAL_TOKEN = re.compile(
    r"^(?:\d+[bmk]?|\d+x\d+[bmk]|v\d+|q\d+|iq\d+|\d+bit|step\d+|"
    r"(?=[0-9a-f]*\d)[0-9a-f]{7,64})$"  # sizes, versions, quant levels, commit hashes
)


def name_tokens(text: str) -> tuple[str, ...]:
    """ "Baichuan-inc/Baichuan2-13B-Chat" -> ("baichuan", "inc", "baichuan2", "13b", "chat")."""
    return tuple(token for token in _NOT_ALNUM.split(text.lower()) if token)


def is_neutral(token: str) -> bool:
    """A name token that tells no model from another (size, version, format, hash)."""
    return token in _NEUTRAL_WORDS or _NEUTRAL_TOKEN.match(token) is not None


def own_name(model_name: str) -> str:
    """The model's own name in a repo id or path: "Qwen/Qwen3-8B" -> "Qwen3-8B";
    ".../models--lmsys--vicuna-7b-v1.5/snapshots/<hash>" -> "vicuna-7b-v1.5"; "" if none."""
    for part in reversed(_PATH_SEP.split(model_name.strip())):
        cache = _HF_CACHE_FOLDER.match(part)
        if cache:
            return cache.group(1)
        tokens = name_tokens(part)
        if tokens and not all(is_neutral(token) for token in tokens):
            return part
    return ""


@dataclasses.dataclass(frozen=True, slots=True)
class NameRule:
    """Model names whose tokens contain `pattern`'s tokens, in order, use `template`."""

    pattern: str
    template: str
    priority: int = 0
    tokens: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = name_tokens(self.pattern)
        if not tokens:
            raise ValueError(f"rule pattern {self.pattern!r} has no letters or digits")
        object.__setattr__(self, "tokens", tokens)

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (self.priority, len(self.tokens), sum(len(token) for token in self.tokens))

    def matches(self, tokens: tuple[str, ...]) -> bool:
        remaining = iter(tokens)
        return all(token in remaining for token in self.tokens)


def _order(rule: NameRule) -> tuple[int, int, int, str]:
    """Sort key: most specific first; on a tie, the alphabetically first pattern."""
    priority, n_tokens, n_chars = rule.specificity
    return (-priority, -n_tokens, -n_chars, rule.pattern)


def matching_rules(rules: Iterable[NameRule], model_name: str) -> list[NameRule]:
    """Every rule that matches the model's own name, most specific first."""
    tokens = name_tokens(own_name(model_name))
    return sorted((rule for rule in rules if rule.matches(tokens)), key=_order)


def best_rule(rules: Iterable[NameRule], model_name: str) -> NameRule | None:
    """The most specific rule for `model_name`, or None when no rule matches."""
    hits = matching_rules(rules, model_name)
    return hits[0] if hits else None


def unexplained_words(rule: NameRule, model_name: str) -> list[str]:
    """Words of the model's own name that neither `rule` nor neutral tokens account for: on a
    base-model rule they suggest a fine-tune ("Nous-Hermes-Llama2-13b": nous, hermes)."""
    covered = set(rule.tokens)
    tokens = name_tokens(own_name(model_name))
    return [t for t in dict.fromkeys(tokens) if t not in covered and not is_neutral(t)]
