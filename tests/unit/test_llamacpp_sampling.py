"""The llamacpp backend's logits processing means what the hf backend's does (sampling.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from model_worker.backends.base import SamplingOptions
from model_worker.backends.llamacpp_sampling import adjust_logits, token_logprob
from model_worker.backends.sampling import apply_penalties
from model_worker.backends.sampling import token_logprob as torch_token_logprob

PROMPT = [3, 5, 5, 9]
OUTPUT = [5, 7, 7, 7, 11]


@pytest.mark.parametrize(
    "penalties",
    [
        {"repetition_penalty": 1.3},
        {"presence_penalty": 0.5, "frequency_penalty": 0.25},
        {"repetition_penalty": 0.8, "presence_penalty": -0.4, "frequency_penalty": 1.0},
        {"logit_bias": ((3, 100.0), (7, -2.5))},
        {},
    ],
)
def test_penalties_match_the_hf_backend(penalties: dict[str, Any]) -> None:
    opts = SamplingOptions(max_tokens=4, **penalties)
    logits = np.random.default_rng(0).normal(size=32).astype(np.float32)
    expected = apply_penalties(torch.from_numpy(logits.copy()), opts, PROMPT, OUTPUT)
    adjust_logits(logits, opts, PROMPT, OUTPUT)
    np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-6)


def test_banned_ids_can_never_be_sampled() -> None:
    logits = np.zeros(8, dtype=np.float32)
    adjust_logits(logits, SamplingOptions(max_tokens=4), [], [], banned={2, 6})
    assert np.isneginf(logits[[2, 6]]).all() and np.isfinite(logits[[0, 1, 3, 4, 5, 7]]).all()


def test_logprobs_match_the_hf_backend() -> None:
    logits = np.random.default_rng(1).normal(scale=4.0, size=64).astype(np.float32)
    ours = token_logprob(logits, 17, 5)
    theirs = torch_token_logprob(torch.from_numpy(logits), 17, 5)
    assert ours.token_id == 17
    assert ours.logprob == pytest.approx(theirs.logprob, abs=1e-5)
    assert [i for i, _ in ours.top] == [i for i, _ in theirs.top]
    assert [lp for _, lp in ours.top] == pytest.approx([lp for _, lp in theirs.top], abs=1e-5)
