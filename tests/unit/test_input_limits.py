"""Bounds on the work one request may ask for (protocol/limits.py, protocol/openai.py): what
each request over a bound gets, and that one at the bound passes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from protocol.errors import InvalidRequest
from protocol.limits import (
    InputLimits,
    check_chat,
    check_completion,
    check_embedding,
    estimate_tokens,
)
from protocol.openai import (
    MAX_STOP_CHARS,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)
from servekit.http import invalid_request

LIMITS = InputLimits(max_prompts=4, max_choices=8, max_embedding_inputs=3, max_input_chars=100)


def _completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


def _chat(content: str = "hi", **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    )


def _refused(check: Any, req: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check(req, LIMITS)
    assert caught.value.status_code == 400
    return caught.value


def test_completion_prompts_up_to_the_limit_pass_one_more_is_400() -> None:
    check_completion(_completion(prompt=["a"] * 4), LIMITS)
    err = _refused(check_completion, _completion(prompt=["a"] * 5))
    assert (err.param, err.code) == ("prompt", "too_many_prompts")
    token_lists = _completion(prompt=[[1]] * 5)
    assert _refused(check_completion, token_lists).param == "prompt"


def test_prompts_times_n_over_the_limit_is_400_on_n() -> None:
    check_completion(_completion(prompt=["a"] * 4, n=2), LIMITS)
    err = _refused(check_completion, _completion(prompt=["a"] * 3, n=3))
    assert (err.param, err.code) == ("n", "too_many_choices")


def test_total_characters_or_token_ids_over_the_limit_is_400() -> None:
    check_completion(_completion(prompt=["x" * 50, "x" * 50]), LIMITS)
    err = _refused(check_completion, _completion(prompt=["x" * 50, "x" * 51]))
    assert (err.param, err.code) == ("prompt", "input_too_long")
    assert _refused(check_completion, _completion(prompt=[[1] * 101])).param == "prompt"
    check_chat(_chat("x" * 100), LIMITS)
    assert _refused(check_chat, _chat("x" * 101)).param == "messages"


def test_embedding_inputs_and_characters_over_the_limit_are_400() -> None:
    check_embedding(EmbeddingRequest(model="m", input=["a"] * 3), LIMITS)
    err = _refused(check_embedding, EmbeddingRequest(model="m", input=["a"] * 4))
    assert (err.param, err.code) == ("input", "too_many_inputs")
    err = _refused(check_embedding, EmbeddingRequest(model="m", input="x" * 101))
    assert (err.param, err.code) == ("input", "input_too_long")


@pytest.mark.parametrize(
    ("req", "check"),
    [
        (_chat(min_tokens=5, max_tokens=4), check_chat),
        (_chat(min_tokens=5, max_completion_tokens=4), check_chat),
        (_completion(min_tokens=17), check_completion),  # max_tokens defaults to 16
    ],
)
def test_min_tokens_over_max_tokens_is_400_on_min_tokens(req: Any, check: Any) -> None:
    assert _refused(check, req).param == "min_tokens"


def test_min_tokens_up_to_max_tokens_or_without_max_tokens_pass() -> None:
    check_chat(_chat(min_tokens=4, max_tokens=4), LIMITS)
    check_chat(_chat(min_tokens=400), LIMITS)  # no max_tokens: the context bounds it


def test_a_stop_string_over_256_characters_is_400_on_stop() -> None:
    _completion(stop=["x" * MAX_STOP_CHARS])
    with pytest.raises(ValidationError) as caught:
        _completion(stop=["ok", "x" * (MAX_STOP_CHARS + 1)])
    err = invalid_request(caught.value.errors())
    assert err.param == "stop"
    assert f"at most {MAX_STOP_CHARS} characters" in err.message


def test_the_token_estimate_covers_input_and_every_choice() -> None:
    prompt, completion = estimate_tokens(_chat("x" * 400, max_tokens=10, n=3))
    assert prompt >= 100 and completion == 30
    prompt, completion = estimate_tokens(_completion(prompt=[[1, 2], [3]], max_tokens=5, n=2))
    assert (prompt, completion) == (3, 20)
    assert estimate_tokens(_chat())[1] > 0  # no max_tokens still reserves something
    assert estimate_tokens(EmbeddingRequest(model="m", input=[[1, 2, 3]])) == (3, 0)
