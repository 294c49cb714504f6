"""Nothing silently dropped: the OpenAI request fields Corral declares but does not honour.

Every field of OpenAI's chat completions, completions and embeddings requests is declared in
`protocol.openai`. Each is either honoured, accepted and ignored for a stated reason (metadata
such as `user`), or listed here: sent with anything but its neutral value, it is refused with
400 `unsupported` naming the field. A field OpenAI does not define at all is refused with 400
`unknown_parameter`. The README's field tables mirror this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.errors import InvalidRequest


class UnsupportedParameter(InvalidRequest):
    default_code = "unsupported"


class UnknownParameter(InvalidRequest):
    default_code = "unknown_parameter"


def _unset(value: Any) -> bool:
    return value is None


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str
    # the values that ask for nothing this field would change (its neutral values)
    neutral: Callable[[Any], bool] = _unset


def _text_only(value: Any) -> bool:
    return value is None or list(value) == ["text"]


def _one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: value is None or value in allowed


CHAT: tuple[Refusal, ...] = (
    Refusal("audio", "audio output: the models served here produce text only"),
    Refusal("modalities", "only text output is produced", _text_only),
    Refusal("prediction", "predicted outputs are not implemented"),
    Refusal("reasoning_effort", "the models served here have no reasoning-effort control"),
    Refusal("verbosity", "the models served here have no verbosity control", _one_of("medium")),
    Refusal("web_search_options", "there is no web search"),
    Refusal("store", "completions are not stored", _one_of(False)),
    Refusal(
        "service_tier",
        "there is one service tier",
        _one_of("auto", "default"),
    ),
)

COMPLETIONS: tuple[Refusal, ...] = (
    Refusal("best_of", "best_of is not implemented (vLLM dropped it too); use n", _one_of(1)),
    Refusal(
        "suffix",
        "suffix (fill-in-the-middle) is not supported by LLaMA chat models",
        lambda value: not value,
    ),
)

EMBEDDINGS: tuple[Refusal, ...] = (
    Refusal(
        "dimensions",
        "the models served here give embeddings of one size; choosing dimensions is not supported",
    ),
)


def refuse_unsupported(values: Mapping[str, Any], table: tuple[Refusal, ...]) -> None:
    """Raise 400 `unsupported` for the first field of `table` set to a non-neutral value."""
    for refusal in table:
        value = values.get(refusal.field)
        if not refusal.neutral(value):
            raise UnsupportedParameter(
                f"{refusal.field} is not supported: {refusal.reason}", param=refusal.field
            )


def refuse_unknown(data: Any, known: set[str]) -> None:
    """Raise 400 `unknown_parameter` for the first key of a request body that is no field."""
    if not isinstance(data, Mapping):
        return
    for key in data:
        if key not in known:
            raise UnknownParameter(f"unknown parameter: {key!r}", param=str(key))
