"""Nothing silently dropped (protocol/refused.py): each OpenAI field is honoured or refused."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.errors import InvalidRequest
from protocol.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from protocol.refused import CHAT, COMPLETIONS, EMBEDDINGS, UnknownParameter, UnsupportedParameter

MSG = [{"role": "user", "content": "hi"}]
CHAT_BASE: dict[str, Any] = {"model": "m", "messages": MSG}
COMPLETION_BASE: dict[str, Any] = {"model": "m", "prompt": "hi"}
EMBEDDING_BASE: dict[str, Any] = {"model": "m", "input": "hi"}

# a value of each refused field that asks for something Corral does not do
ASKING: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "mp3"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "high",
    "verbosity": "low",
    "web_search_options": {},
    "store": True,
    "service_tier": "priority",
    "best_of": 3,
    "suffix": "}",
    "dimensions": 8,
    "logit_bias": {"5": 10.0},
}


def _cases() -> list[tuple[type, dict[str, Any], str]]:
    return [
        *[(ChatCompletionRequest, CHAT_BASE, r.field) for r in CHAT],
        *[(CompletionRequest, COMPLETION_BASE, r.field) for r in COMPLETIONS],
        *[(EmbeddingRequest, EMBEDDING_BASE, r.field) for r in EMBEDDINGS],
    ]


@pytest.mark.parametrize(("model", "base", "field"), _cases())
def test_each_refused_field_is_400_unsupported_naming_it(
    model: type, base: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        model.model_validate({**base, field: ASKING[field]})
    err = caught.value.envelope()["error"]
    assert (caught.value.status_code, err["param"], err["code"]) == (400, field, "unsupported")
    assert field in err["message"]


@pytest.mark.parametrize(("model", "base", "field"), _cases())
def test_refused_fields_at_their_neutral_value_are_accepted(
    model: type, base: dict[str, Any], field: str
) -> None:
    neutral = {"modalities": ["text"], "verbosity": "medium", "store": False, "best_of": 1}
    model.model_validate({**base, field: neutral.get(field)})


@pytest.mark.parametrize(
    ("model", "base"),
    [
        (ChatCompletionRequest, CHAT_BASE),
        (CompletionRequest, COMPLETION_BASE),
        (EmbeddingRequest, EMBEDDING_BASE),
    ],
)
def test_a_field_openai_does_not_define_is_400_unknown_parameter(
    model: type, base: dict[str, Any]
) -> None:
    with pytest.raises(UnknownParameter) as caught:
        model.model_validate({**base, "temprature": 0.5})
    err = caught.value.envelope()["error"]
    assert (err["param"], err["code"]) == ("temprature", "unknown_parameter")


def test_metadata_fields_are_accepted_and_ignored() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            **CHAT_BASE,
            "user": "u1",
            "metadata": {"k": "v"},
            "safety_identifier": "s",
            "prompt_cache_key": "p",
            "prompt_cache_retention": "24h",
            "service_tier": "auto",
            "store": False,
            "stream": True,
            "stream_options": {"include_usage": True, "include_obfuscation": False},
        }
    )
    assert req.metadata == {"k": "v"}


def test_unknown_keys_inside_stream_options_are_refused_too() -> None:
    with pytest.raises(ValueError, match="stream_options"):
        ChatCompletionRequest.model_validate(
            {**CHAT_BASE, "stream": True, "stream_options": {"include_usag": True}}
        )


@pytest.mark.parametrize(
    ("response_format", "ok"),
    [
        ({"type": "text"}, True),
        ({"type": "json_object"}, True),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}, True),
        ({"type": "json_schema", "json_schema": {"name": "x", "strict": True}}, True),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 3}}}, False),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"minimum": "a"}}}, False),
    ],
)
def test_response_format_schema_is_checked_against_the_meta_schema(
    response_format: dict[str, Any], ok: bool
) -> None:
    body = {**CHAT_BASE, "response_format": response_format}
    if ok:
        ChatCompletionRequest.model_validate(body)
        return
    with pytest.raises(InvalidRequest) as caught:
        ChatCompletionRequest.model_validate(body)
    assert caught.value.param == "response_format"
    assert "invalid JSON schema" in caught.value.message


def test_response_format_of_unknown_type_is_a_validation_error() -> None:
    with pytest.raises(ValueError, match="response_format"):
        ChatCompletionRequest.model_validate({**CHAT_BASE, "response_format": {"type": "yaml"}})
