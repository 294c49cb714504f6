"""Logit processing and sampling for backends that decode token by token (hf)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from model_worker.backends.base import SamplingOptions, TokenLogprob
from protocol.openai import GREEDY_TEMPERATURE


def apply_penalties(
    logits: torch.Tensor,
    opts: SamplingOptions,
    prompt_ids: Sequence[int],
    output_ids: Sequence[int],
) -> torch.Tensor:
    """Repetition penalty (CTRL-style, over prompt and output), OpenAI presence/frequency
    penalties and logit_bias."""
    if opts.repetition_penalty != 1.0:
        seen = torch.tensor(sorted(set(prompt_ids) | set(output_ids)), dtype=torch.long)
        picked = logits[seen]
        logits[seen] = torch.where(
            picked > 0, picked / opts.repetition_penalty, picked * opts.repetition_penalty
        )
    if output_ids and (opts.presence_penalty or opts.frequency_penalty):
        ids, counts = torch.tensor(output_ids, dtype=torch.long).unique(return_counts=True)
        logits[ids] -= opts.presence_penalty + opts.frequency_penalty * counts.to(logits.dtype)
    if opts.logit_bias:
        ids = torch.tensor([token for token, _ in opts.logit_bias], dtype=torch.long)
        logits[ids] += torch.tensor([bias for _, bias in opts.logit_bias], dtype=logits.dtype)
    return logits


def sample(logits: torch.Tensor, opts: SamplingOptions, generator: torch.Generator | None) -> int:
    """One token id from processed logits: greedy at temperature 0, else top-k/top-p/min-p."""
    if opts.temperature < GREEDY_TEMPERATURE:
        return int(torch.argmax(logits))
    logits = logits / opts.temperature
    if opts.top_k > 0 and opts.top_k < logits.numel():
        kth = torch.topk(logits, opts.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if opts.min_p > 0.0:
        probs = probs.masked_fill(probs < opts.min_p * probs.max(), 0.0)
    if opts.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        drop = cumulative - sorted_probs > opts.top_p  # keep the token that crosses top_p
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def token_logprob(raw_logits: torch.Tensor, token_id: int, top: int) -> TokenLogprob:
    """Log-probability of the chosen token under the model, with the `top` most likely."""
    logprobs = torch.log_softmax(raw_logits.float(), dim=-1)
    best: tuple[tuple[int, float], ...] = ()
    if top > 0:
        values, ids = torch.topk(logprobs, top)
        best = tuple(zip(ids.tolist(), values.tolist(), strict=True))
    return TokenLogprob(token_id=token_id, logprob=float(logprobs[token_id]), top=best)
