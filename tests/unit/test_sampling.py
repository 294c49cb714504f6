"""Logit processing and sampling (model_worker/backends/sampling.py)."""

from __future__ import annotations

import math

import torch

from model_worker.backends.base import SamplingOptions
from model_worker.backends.sampling import apply_penalties, sample, token_logprob


def opts(**kw: object) -> SamplingOptions:
    return SamplingOptions(max_tokens=1, **kw)  # type: ignore[arg-type]


def test_temperature_zero_is_greedy() -> None:
    logits = torch.tensor([0.1, 2.0, 1.9])
    assert {sample(logits, opts(temperature=0.0), None) for _ in range(10)} == {1}


def test_seeded_sampling_is_reproducible() -> None:
    logits = torch.zeros(50)
    a = [sample(logits, opts(), torch.Generator().manual_seed(7)) for _ in range(3)]
    b = [sample(logits, opts(), torch.Generator().manual_seed(7)) for _ in range(3)]
    assert a == b


def test_top_k_one_is_greedy() -> None:
    logits = torch.tensor([1.0, 3.0, 2.0])
    gen = torch.Generator().manual_seed(0)
    assert {sample(logits, opts(top_k=1), gen) for _ in range(20)} == {1}


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([0.6, 0.3, 0.05, 0.05]))
    gen = torch.Generator().manual_seed(0)
    picks = {sample(logits, opts(top_p=0.8), gen) for _ in range(200)}
    assert picks == {0, 1}


def test_min_p_drops_unlikely_tokens() -> None:
    logits = torch.log(torch.tensor([0.5, 0.4, 0.1]))
    gen = torch.Generator().manual_seed(0)
    picks = {sample(logits, opts(min_p=0.5), gen) for _ in range(200)}
    assert picks == {0, 1}


def test_presence_and_frequency_penalties_follow_openai() -> None:
    logits = torch.zeros(4)
    out = apply_penalties(logits, opts(presence_penalty=0.5, frequency_penalty=0.25), [], [1, 1, 2])
    assert out.tolist() == [0.0, -1.0, -0.75, 0.0]


def test_repetition_penalty_divides_positive_and_multiplies_negative() -> None:
    logits = torch.tensor([2.0, -2.0, 2.0])
    out = apply_penalties(logits, opts(repetition_penalty=2.0), [0], [1])
    assert out.tolist() == [1.0, -4.0, 2.0]


def test_token_logprob_matches_log_softmax() -> None:
    logits = torch.tensor([1.0, 2.0, 3.0])
    lp = token_logprob(logits, 0, top=2)
    expected = 1.0 - math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert math.isclose(lp.logprob, expected, rel_tol=1e-6)
    assert [t for t, _ in lp.top] == [2, 1]


def test_vanishing_temperature_is_greedy_not_nan() -> None:
    """Found by schemathesis: temperature 5e-324 divided logits into infinities."""
    logits = torch.tensor([0.5, 1.5, 1.0])
    assert sample(logits, opts(temperature=5e-324), torch.Generator().manual_seed(0)) == 1


def test_logit_bias_is_added_to_the_logits() -> None:
    logits = torch.tensor([5.0, 0.0, 1.0, 2.0])
    biased = apply_penalties(logits.clone(), opts(logit_bias=((1, 100.0), (0, -100.0))), [], [])
    assert biased.tolist() == [-95.0, 100.0, 1.0, 2.0]
    assert sample(biased, opts(temperature=0.0), None) == 1
