"""The worker's own OpenAI server on the tiny model (model_worker/app.py, serving_*.py).

These are the OpenAI contract tests of a worker: each runs on a local worker (hf backend) and
on an external one (`--backend openai`) in front of a second tiny-model worker on loopback, which
must be indistinguishable to a client.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from harness import loopback, serve, sse_events, worker_app

from protocol.openai import ChatCompletionResponse, CompletionResponse
from protocol.stream import ChatCompletionChunk

pytestmark = pytest.mark.asyncio(loop_scope="module")
MSGS = [{"role": "user", "content": "Hello there"}]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["local", "external"])
async def worker(
    tiny_model_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    local = worker_app(tiny_model_path, capacity=2, max_queued=1)
    if request.param == "local":
        async with serve(local) as client:
            yield client
        return
    async with loopback(worker_app(tiny_model_path, model_name="inner")) as upstream:
        external = worker_app(
            tiny_model_path,
            backend="openai",
            base_url=f"{upstream}/v1",
            upstream_model="inner",
            capacity=2,
            max_queued=1,
        )
        async with serve(external) as client:
            yield client


async def chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": MSGS, **body}
    )


async def test_chat_reply_has_openai_shape_and_usage_adds_up(worker: httpx.AsyncClient) -> None:
    r = await chat(worker, max_tokens=6, temperature=0)
    assert r.status_code == 200
    body = ChatCompletionResponse.model_validate(r.json())
    assert body.choices[0].finish_reason == "length"
    assert body.usage.completion_tokens == 6
    assert body.usage.total_tokens == body.usage.prompt_tokens + 6
    assert body.usage.prompt_tokens > 5


async def test_greedy_is_deterministic_and_seed_reproduces_sampling(
    worker: httpx.AsyncClient,
) -> None:
    texts = [(await chat(worker, max_tokens=8, temperature=0)).json() for _ in range(2)]
    assert texts[0]["choices"] == texts[1]["choices"]
    seeded = [(await chat(worker, max_tokens=8, seed=42)).json()["choices"] for _ in range(2)]
    assert seeded[0] == seeded[1]


async def test_stream_is_role_deltas_finish_usage_done(worker: httpx.AsyncClient) -> None:
    r = await chat(
        worker, max_tokens=5, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    # deltas, never cumulative: joined they equal the non-streamed reply
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    whole = (await chat(worker, max_tokens=5, temperature=0)).json()
    assert streamed == whole["choices"][0]["message"]["content"]
    assert len({c.id for c in chunks}) == 1


async def test_stream_without_include_usage_has_no_usage_chunk(worker: httpx.AsyncClient) -> None:
    events = sse_events((await chat(worker, max_tokens=3, stream=True)).text)
    assert all(e == "[DONE]" or "usage" not in e or e["usage"] is None for e in events)


async def test_stop_string_cuts_output_and_is_never_emitted(worker: httpx.AsyncClient) -> None:
    full = (await chat(worker, max_tokens=12, temperature=0)).json()["choices"][0]["message"]
    text = full["content"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), f"greedy output too short to pick a stop from: {text!r}"
    for stream in (False, True):
        r = await chat(worker, max_tokens=12, temperature=0, stop=[stop], stream=stream)
        if stream:
            chunks = [e for e in sse_events(r.text) if e != "[DONE]"]
            got = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            finish = chunks[-1]["choices"][0]["finish_reason"]
        else:
            got = r.json()["choices"][0]["message"]["content"]
            finish = r.json()["choices"][0]["finish_reason"]
        assert got == text[: text.index(stop)]
        assert stop not in got
        assert finish == "stop"


async def test_n_gives_n_choices(worker: httpx.AsyncClient) -> None:
    r = await chat(worker, max_tokens=4, n=3, seed=1)
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 12


async def test_chat_logprobs_are_consistent(worker: httpx.AsyncClient) -> None:
    r = await chat(worker, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3)
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 4
    for entry in content:
        assert entry["logprob"] <= 0
        assert len(entry["top_logprobs"]) == 3
        # greedy picks the most likely token, so it heads the top list
        assert math.isclose(entry["top_logprobs"][0]["logprob"], entry["logprob"], rel_tol=1e-5)


async def test_completions_with_token_prompts_echo_and_logprobs(
    worker: httpx.AsyncClient,
) -> None:
    r = await worker.post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": [[5, 6, 7], [8, 9]],
            "max_tokens": 3,
            "n": 2,
            "seed": 5,
            "logprobs": 2,
        },
    )
    body = CompletionResponse.model_validate(r.json())
    assert len(body.choices) == 4
    assert body.usage is not None and body.usage.prompt_tokens == 5
    assert body.usage.completion_tokens == 12
    lp = body.choices[0].logprobs
    assert lp is not None and len(lp.tokens) == 3 and len(lp.text_offset) == 3
    echo = await worker.post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": "one two",
            "max_tokens": 2,
            "echo": True,
            "temperature": 0,
        },
    )
    assert echo.json()["choices"][0]["text"].startswith("one two")


async def test_embeddings_are_normalised(worker: httpx.AsyncClient) -> None:
    r = await worker.post("/v1/embeddings", json={"model": "tiny", "input": ["a b", "c"]})
    data = r.json()["data"]
    assert len(data) == 2
    for item in data:
        assert math.isclose(math.fsum(x * x for x in item["embedding"]), 1.0, rel_tol=1e-4)
    b64 = await worker.post(
        "/v1/embeddings", json={"model": "tiny", "input": "a", "encoding_format": "base64"}
    )
    assert isinstance(b64.json()["data"][0]["embedding"], str)


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "code"),
    [
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": MSGS, "max_tokens": 9999},
            400,
            "messages",
            "context_length_exceeded",
        ),
        (
            "/v1/chat/completions",
            {"model": "other", "messages": MSGS},
            404,
            "model",
            "model_not_found",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "wizard"}]},
            400,
            "messages[0].role",
            None,
        ),
        ("/v1/chat/completions", {"model": "tiny"}, 400, "messages", None),
        ("/v1/completions", {"model": "tiny", "prompt": [99999]}, 400, "prompt", None),
        (
            "/v1/completions",
            {"model": "tiny", "prompt": "x", "echo": True, "logprobs": 1},
            400,
            "echo",
            None,
        ),
        (
            "/v1/embeddings",
            {"model": "tiny", "input": "x", "dimensions": 8},
            400,
            "dimensions",
            "unsupported",
        ),
    ],
)
async def test_bad_input_gets_status_and_envelope(
    worker: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    status: int,
    param: str,
    code: str | None,
) -> None:
    r = await worker.post(path, json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == param
    assert err["code"] == code
    assert err["message"]


async def test_malformed_json_is_400(worker: httpx.AsyncClient) -> None:
    r = await worker.post(
        "/v1/chat/completions",
        content=b'{"model": "tiny", ',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["message"]


async def test_full_queue_answers_503(worker: httpx.AsyncClient) -> None:
    """capacity 2 + 1 queued: a fourth concurrent request is refused with the envelope."""
    long = [
        asyncio.create_task(chat(worker, max_tokens=200, min_tokens=200, temperature=0))
        for _ in range(3)
    ]
    while (await worker.get("/internal/status")).json()["in_flight"] < 3:
        await asyncio.sleep(0.01)
    r = await chat(worker, max_tokens=1)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "overloaded"
    for t in long:
        assert (await t).status_code == 200
    assert (await worker.get("/internal/status")).json()["in_flight"] == 0


async def test_models_health_and_status(worker: httpx.AsyncClient) -> None:
    assert [m["id"] for m in (await worker.get("/v1/models")).json()["data"]] == ["tiny"]
    assert (await worker.get("/health")).json() == {"status": "ok"}
    status = (await worker.get("/internal/status")).json()
    assert status["capacity"] == 2 and status["backend"] in ("hf", "openai")
    # an external worker leaves the template to its upstream
    assert bool(status["template"]) == (status["backend"] == "hf")
    (card,) = (await worker.get("/v1/models")).json()["data"]
    assert card["max_model_len"] == status["context_length"] > 0


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"model": "tiny", "prompt": ""}, "prompt"),
        ("/v1/completions", {"model": "tiny", "prompt": ["a", ""]}, "prompt"),
        ("/v1/embeddings", {"model": "tiny", "input": ["a", ""]}, "input"),
    ],
)
async def test_empty_prompts_are_400_not_500(
    worker: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    """Found by the schemathesis run: an empty prompt used to reach the model."""
    r = await worker.post(path, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param
