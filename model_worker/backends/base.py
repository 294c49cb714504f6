"""What every backend provides: a tokenizer, a context length and a stream of deltas.

Backends are flat single files behind this small protocol. The serving layer (prompts, stop
merging, OpenAI framing, usage) is shared, so a backend only turns token ids into token ids.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from model_worker.structured import Constraint
from protocol.openai import FinishReason


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    seed: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None  # None: none; k: the sampled token plus the k most likely
    constraint: Constraint | None = None  # structured output (model_worker/structured.py)


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions
    lora: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()  # (token id, logprob), most likely first


@dataclass
class Delta:
    """New output of one choice since the previous delta."""

    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None


class BackendError(Exception):
    """The engine failed (not the request): the worker turns unhealthy."""


class Backend(Protocol):
    name: str
    tokenizer: Any  # a transformers tokenizer
    max_model_len: int
    capacity: int  # requests the backend serves at once
    can_generate: bool
    can_embed: bool
    chat_template: str | None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def healthy(self) -> bool: ...

    def running(self) -> int:
        """Requests the engine is working on now (aborted ones leave at once)."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        """Yield lists of deltas (any choices) until every choice has a finish_reason.

        Closing the iterator early aborts the request in the engine.
        """
        ...

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]: ...

    def adapters(self) -> list[str]:
        """Extra model names served by this backend (LoRA adapters)."""
        ...
