"""A vllm worker started with `--runner pooling` serves /v1/embeddings (mean-pooled,
L2-normalised) and nothing else; its vectors agree with the hf backend's."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from harness import loopback, serve, worker_app
from requires import require

require("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
TEXTS = ["Paris is the capital of France.", "one two three", "hello"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pooling_worker(tiny_model_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = worker_app(
        tiny_model_path, backend="vllm", runner="pooling", dtype="float32", enforce_eager=True
    )
    async with loopback(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as client:
        yield client


async def test_embeddings_match_the_hf_backend(
    pooling_worker: httpx.AsyncClient, tiny_model_path: Path
) -> None:
    r = await pooling_worker.post("/v1/embeddings", json={"model": "tiny", "input": TEXTS})
    assert r.status_code == 200, r.text
    got = [d["embedding"] for d in r.json()["data"]]
    async with serve(worker_app(tiny_model_path)) as hf:
        want = [
            d["embedding"]
            for d in (
                await hf.post("/v1/embeddings", json={"model": "tiny", "input": TEXTS})
            ).json()["data"]
        ]
    for a, b in zip(got, want, strict=True):
        assert math.isclose(math.fsum(x * x for x in a), 1.0, rel_tol=1e-4)
        assert math.fsum(x * y for x, y in zip(a, b, strict=True)) > 0.999  # cosine
    assert r.json()["usage"]["prompt_tokens"] > 0


async def test_a_pooling_worker_does_not_generate(pooling_worker: httpx.AsyncClient) -> None:
    r = await pooling_worker.post(
        "/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_endpoint"
