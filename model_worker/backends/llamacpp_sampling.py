"""Sampling for the llama.cpp backend: llama.cpp's own sampler chain, plus numpy on the logits.

The chain (C code, over the whole vocabulary) does what llama.cpp does best: temperature,
top-k, top-p, min-p and the seeded draw, or the greedy pick at temperature 0. What OpenAI and
vLLM define differently from llama.cpp's penalties sampler is done first, in place on the
context's logits with numpy, with the same semantics as the hf backend (`sampling.py`):
the repetition penalty (CTRL-style, over prompt and output), presence/frequency penalties over
the output only, logit_bias, and min_tokens (the stop ids masked). Logprobs come from the raw
logits.

Structured output is one more sampler here: llama.cpp's GBNF grammar sampler, first in the
chain (a JSON schema becomes GBNF with llama-cpp-python's own converter).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from model_worker.backends.base import SamplingOptions, TokenLogprob
from model_worker.structured import Constraint
from protocol.openai import GREEDY_TEMPERATURE

_UINT32 = 2**32


def gbnf(constraint: Constraint) -> Any:
    """A constraint as a llama.cpp grammar (LlamaGrammar); ValueError when it cannot be one."""
    from llama_cpp.llama_grammar import LlamaGrammar

    if constraint.kind == "json":
        return LlamaGrammar.from_json_schema(constraint.spec, verbose=False)
    return LlamaGrammar.from_string(constraint.spec, verbose=False)


def sampler_chain(opts: SamplingOptions, choice: int, model: Any = None) -> Any:
    """A llama.cpp sampler chain for one choice; seeded choices differ yet reproduce.

    With a constraint, `model` (the LlamaModel) is needed for its vocabulary.
    """
    from llama_cpp._internals import LlamaSampler

    chain = LlamaSampler()
    if opts.constraint is not None:
        chain.add_grammar(model, gbnf(opts.constraint))
    if opts.temperature < GREEDY_TEMPERATURE:
        chain.add_greedy()
        return chain
    seed = random.getrandbits(32) if opts.seed is None else (opts.seed + choice) % _UINT32
    chain.add_temp(opts.temperature)  # first, as vLLM and the hf backend do
    if opts.top_k > 0:
        chain.add_top_k(opts.top_k)
    if opts.top_p < 1.0:
        chain.add_top_p(opts.top_p, 1)
    if opts.min_p > 0.0:
        chain.add_min_p(opts.min_p, 1)
    chain.add_dist(seed)
    return chain


def adjust_logits(
    logits: np.ndarray,
    opts: SamplingOptions,
    prompt_ids: Sequence[int],
    output_ids: Sequence[int],
    banned: Iterable[int] = (),
) -> None:
    """Penalties and bans, in place on one position's logits (float32, vocabulary long)."""
    if opts.repetition_penalty != 1.0:
        seen = np.unique(np.fromiter((*prompt_ids, *output_ids), dtype=np.int64))
        picked = logits[seen]
        logits[seen] = np.where(
            picked > 0, picked / opts.repetition_penalty, picked * opts.repetition_penalty
        )
    if output_ids and (opts.presence_penalty or opts.frequency_penalty):
        ids, counts = np.unique(np.asarray(output_ids, dtype=np.int64), return_counts=True)
        logits[ids] -= opts.presence_penalty + opts.frequency_penalty * counts
    if opts.logit_bias:
        ids = np.array([token for token, _ in opts.logit_bias], dtype=np.int64)
        logits[ids] += np.array([bias for _, bias in opts.logit_bias], dtype=logits.dtype)
    ban = list(banned)
    if ban:
        logits[ban] = -np.inf


def token_logprob(raw_logits: np.ndarray, token_id: int, top: int) -> TokenLogprob:
    """Log-probability of the chosen token under the model, with the `top` most likely."""
    shifted = raw_logits.astype(np.float64) - float(np.max(raw_logits))
    logprobs = shifted - np.log(np.exp(shifted).sum())
    best: tuple[tuple[int, float], ...] = ()
    if top > 0:
        ids = np.argpartition(-logprobs, top - 1)[:top]
        ids = ids[np.argsort(-logprobs[ids], kind="stable")]
        best = tuple((int(i), float(logprobs[i])) for i in ids)
    return TokenLogprob(token_id=token_id, logprob=float(logprobs[token_id]), top=best)
