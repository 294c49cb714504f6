"""Request validation (protocol/openai.py): what each bad input gets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from protocol.refused import UnsupportedParameter

MSG = [{"role": "user", "content": "hi"}]


def test_minimal_chat_request_defaults() -> None:
    req = ChatCompletionRequest.model_validate({"model": "m", "messages": MSG})
    assert (req.n, req.temperature, req.top_p, req.stream) == (1, 1.0, 1.0, False)
    assert req.requested_max_tokens() is None
    assert req.stop_list() == []


def test_openai_metadata_fields_are_accepted() -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": MSG, "user": "u", "metadata": {}}
    )
    assert req.model == "m"


def test_text_content_parts_are_joined() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
        }
    )
    assert req.messages[0].text() == "ab"


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": MSG, "max_tokens": 5, "max_completion_tokens": 9}
    )
    assert req.requested_max_tokens() == 9


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"stop": [""]}, "stop"),
        ({"stop": ["s"] * 17}, "stop"),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
        ({"repetition_penalty": 5e-324}, "repetition_penalty"),  # found by schemathesis
        ({"model": ""}, "model"),
    ],
)
def test_bad_chat_fields_are_rejected(patch: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"model": "m", "messages": MSG, **patch})
    assert info.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    "patch",
    [
        {"top_logprobs": 2},  # needs logprobs: true
        {"stream_options": {"include_usage": True}},  # needs stream: true
        {"n": 2, "temperature": 0},  # greedy choices would all be the same
    ],
)
def test_cross_field_rules(patch: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"model": "m", "messages": MSG, **patch})


def test_completion_prompt_forms() -> None:
    assert CompletionRequest(model="m", prompt="a").prompts() == ["a"]
    assert CompletionRequest(model="m", prompt=["a", "b"]).prompts() == ["a", "b"]
    assert CompletionRequest(model="m", prompt=[1, 2]).prompts() == [[1, 2]]
    assert CompletionRequest(model="m", prompt=[[1], [2, 3]]).prompts() == [[1], [2, 3]]


@pytest.mark.parametrize("prompt", [[], [[]], [[1], []]])
def test_empty_completion_prompts_are_rejected(prompt: object) -> None:
    with pytest.raises(ValidationError):
        CompletionRequest.model_validate({"model": "m", "prompt": prompt})


def test_suffix_is_rejected_with_a_reason() -> None:
    with pytest.raises(UnsupportedParameter, match="fill-in-the-middle"):
        CompletionRequest(model="m", prompt="a", suffix="b")


@pytest.mark.parametrize("bad", ["", []])
def test_empty_embedding_input_is_rejected(bad: object) -> None:
    with pytest.raises(ValidationError):
        EmbeddingRequest.model_validate({"model": "m", "input": bad})
