"""Bounds on the work one request may ask for, checked before any of it is done.

A request body is bounded in bytes, but a few bytes can still ask for a lot: a million
one-token prompts, `n=16` times each, or megabytes of text to template and tokenize. The
gateway checks these bounds before it dispatches and every worker checks them again before it
takes a slot, so a request over a bound costs a 400 (with `param`) and nothing else. The
bounds are settings (`--max-prompts`, ...) of both services; the defaults are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from protocol.errors import InvalidRequest
from protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    SamplingFields,
)

DEFAULT_MAX_PROMPTS = 64
DEFAULT_MAX_CHOICES = 128
DEFAULT_MAX_EMBEDDING_INPUTS = 2048
# About 64 k tokens of English: templating and tokenizing this much takes well under a second.
DEFAULT_MAX_INPUT_CHARS = 256_000


@dataclass(frozen=True)
class InputLimits:
    max_prompts: int = DEFAULT_MAX_PROMPTS  # prompts in one completions request
    max_choices: int = DEFAULT_MAX_CHOICES  # prompts x n in one completions request
    max_embedding_inputs: int = DEFAULT_MAX_EMBEDDING_INPUTS
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS  # characters (or token ids) in all inputs


def check_chat(req: ChatCompletionRequest, limits: InputLimits) -> None:
    _check_min_tokens(req, req.requested_max_tokens())
    chars = 0
    for message in req.messages:
        chars += len(message.text())
        if chars > limits.max_input_chars:
            raise _too_many_chars(limits, "messages")


def check_completion(req: CompletionRequest, limits: InputLimits) -> None:
    _check_min_tokens(req, req.max_tokens)
    prompts = req.prompts()
    if len(prompts) > limits.max_prompts:
        raise InvalidRequest(
            f"{len(prompts)} prompts is over the limit of {limits.max_prompts} per request",
            param="prompt",
            code="too_many_prompts",
        )
    if len(prompts) * req.n > limits.max_choices:
        raise InvalidRequest(
            f"{len(prompts)} prompts x n={req.n} is {len(prompts) * req.n} choices, over the "
            f"limit of {limits.max_choices} per request",
            param="n",
            code="too_many_choices",
        )
    if sum(len(p) for p in prompts) > limits.max_input_chars:
        raise _too_many_chars(limits, "prompt")


def check_embedding(req: EmbeddingRequest, limits: InputLimits) -> None:
    inputs = req.inputs()
    if len(inputs) > limits.max_embedding_inputs:
        raise InvalidRequest(
            f"{len(inputs)} inputs is over the limit of {limits.max_embedding_inputs} per request",
            param="input",
            code="too_many_inputs",
        )
    if sum(len(item) for item in inputs) > limits.max_input_chars:
        raise _too_many_chars(limits, "input")


def _check_min_tokens(req: SamplingFields, max_tokens: int | None) -> None:
    if max_tokens is not None and req.min_tokens > max_tokens:
        raise InvalidRequest(
            f"min_tokens ({req.min_tokens}) must not be greater than max_tokens ({max_tokens})",
            param="min_tokens",
        )


def _too_many_chars(limits: InputLimits, param: str) -> InvalidRequest:
    return InvalidRequest(
        f"the {param} is over the limit of {limits.max_input_chars} characters (or token ids) "
        "per request",
        param=param,
        code="input_too_long",
    )


# What a completion may generate when it names no max_tokens, for a token limit's reservation.
UNBOUNDED_COMPLETION_RESERVE = 1024


def estimate_tokens(
    req: ChatCompletionRequest | CompletionRequest | EmbeddingRequest,
) -> tuple[int, int]:
    """(prompt, completion) tokens a request may cost at most, roughly, for a token limit's
    reservation: its input at about four characters a token, and every choice's `max_tokens`."""
    if isinstance(req, ChatCompletionRequest):
        prompt = sum(len(m.text()) for m in req.messages) // 4 + 8 * len(req.messages)
        most = req.requested_max_tokens() or UNBOUNDED_COMPLETION_RESERVE
        return prompt, req.n * most
    if isinstance(req, CompletionRequest):
        prompts = req.prompts()
        prompt = sum(len(p) if isinstance(p, list) else len(p) // 4 + 1 for p in prompts)
        most = req.max_tokens or UNBOUNDED_COMPLETION_RESERVE
        return prompt, len(prompts) * req.n * most
    return sum(len(i) if isinstance(i, list) else len(i) // 4 + 1 for i in req.inputs()), 0


class InputLimitSettings(BaseModel):
    """The caps as settings (flags and variables) of every service that enforces them: the
    gateway before it dispatches, the worker again before it takes a slot."""

    max_prompts: int = Field(
        default=DEFAULT_MAX_PROMPTS, ge=1, description="completions with more prompts get 400"
    )
    max_choices: int = Field(
        default=DEFAULT_MAX_CHOICES,
        ge=1,
        description="completions asking for more prompts x n get 400",
    )
    max_embedding_inputs: int = Field(
        default=DEFAULT_MAX_EMBEDDING_INPUTS,
        ge=1,
        description="embedding requests with more inputs get 400",
    )
    max_input_chars: int = Field(
        default=DEFAULT_MAX_INPUT_CHARS,
        ge=1,
        description="requests with more characters (or token ids) in all their prompts, "
        "messages or inputs get 400",
    )

    def input_limits(self) -> InputLimits:
        return InputLimits(
            self.max_prompts, self.max_choices, self.max_embedding_inputs, self.max_input_chars
        )
