"""Structured output (model_worker/structured.py): constraints and the xgrammar token masks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch

from model_worker.structured import (
    GrammarCache,
    compile_json_schema,
    from_response_format,
    grammar,
    json_object,
)
from protocol.errors import InvalidRequest
from protocol.openai import ChatCompletionRequest

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "likes": {"type": "array", "items": {"enum": ["tea", "coffee"]}, "maxItems": 3},
    },
    "required": ["name", "age", "likes"],
    "additionalProperties": False,
}


def test_compile_json_schema_keeps_the_schema() -> None:
    constraint = compile_json_schema(PERSON)
    assert constraint.kind == "json"
    assert constraint.schema() == PERSON


@pytest.mark.parametrize("schema", [{"type": "frog"}, {"properties": 3}, {"required": "x"}])
def test_invalid_schema_is_400_naming_the_param(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        compile_json_schema(schema, param="tools[0].function.parameters")
    assert caught.value.status_code == 400
    assert caught.value.param == "tools[0].function.parameters"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
        {"type": "object", "propertyNames": {"maxLength": 3}},
    ],
)
def test_keywords_the_grammar_cannot_enforce_are_refused(schema: dict[str, Any]) -> None:
    """xgrammar would drop these silently, and the output could then fail the schema."""
    with pytest.raises(InvalidRequest) as caught:
        compile_json_schema(schema)
    assert (caught.value.param, caught.value.code) == ("response_format", "unsupported")


def test_a_property_named_like_a_keyword_is_fine() -> None:
    schema = {"type": "object", "properties": {"not": {"type": "boolean", "uniqueItems": False}}}
    assert compile_json_schema(schema).kind == "json"


def test_unenforceable_schema_is_400_without_engine_internals() -> None:
    with pytest.raises(InvalidRequest) as caught:
        compile_json_schema({"type": "object", "minProperties": 3})
    assert "minProperties" in caught.value.message
    assert ".cc:" not in caught.value.message


def test_invalid_grammar_is_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        grammar('root ::= "a" | ', param="x")
    assert caught.value.param == "x"
    assert grammar('root ::= "yes" | "no"', param="x").kind == "grammar"


def test_response_format_maps_to_a_constraint() -> None:
    def fmt(value: dict[str, Any]) -> Any:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        return ChatCompletionRequest.model_validate({**body, "response_format": value})

    assert from_response_format(fmt({"type": "text"}).response_format) is None
    assert from_response_format(fmt({"type": "json_object"}).response_format) == json_object()
    schema_fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}
    constraint = from_response_format(fmt(schema_fmt).response_format)
    assert constraint is not None and constraint.schema() == PERSON


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


@pytest.fixture(scope="module")
def cache(tokenizer: Any) -> GrammarCache:
    return GrammarCache(tokenizer, len(tokenizer))


def _decode_under_mask(
    cache: GrammarCache, tokenizer: Any, constraint: Any, seed: int
) -> str | None:
    """Greedy over random logits, masked: the text once an end token comes (None: never)."""
    masker = cache.masker(cache.compile(constraint))
    gen = torch.Generator().manual_seed(seed)
    stops = list(cache.end_ids)
    out: list[int] = []
    for _ in range(400):
        logits = torch.randn(cache.vocab_size, generator=gen)
        masker.mask(logits, stops)
        token = int(torch.argmax(logits))
        if token in stops:
            return str(tokenizer.decode(out))
        masker.accept(token)
        out.append(token)
    return None


@pytest.mark.parametrize("seed", range(5))
def test_masked_random_logits_give_json_that_validates(
    cache: GrammarCache, tokenizer: Any, seed: int
) -> None:
    text = _decode_under_mask(cache, tokenizer, compile_json_schema(PERSON), seed)
    assert text is not None
    jsonschema.validate(json.loads(text), PERSON)


def test_masked_random_logits_give_a_json_object(cache: GrammarCache, tokenizer: Any) -> None:
    text = _decode_under_mask(cache, tokenizer, json_object(), 0)
    assert text is not None and isinstance(json.loads(text), dict)


def test_stop_ids_are_banned_until_the_grammar_may_end(cache: GrammarCache) -> None:
    masker = cache.masker(cache.compile(compile_json_schema({"type": "boolean"})))
    logits = torch.zeros(cache.vocab_size)
    masker.mask(logits, [0, 1])
    assert torch.isinf(logits[[0, 1]]).all()
    assert torch.isfinite(logits).sum() >= 2  # "t..." and "f..."
