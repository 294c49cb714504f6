"""`corral up --backend vllm` on SmolLM2: the full path (gateway -> controller -> vLLM worker)
answers the openai SDK, streaming and not, with the same structure as the hf backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import jsonschema
import openai
import pytest
from procs import Service, free_port
from pydantic import BaseModel, Field

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, store_url: str | None) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("up-vllm-logs")
    api = free_port()
    store = ["--store-url", store_url] if store_url else []
    up = Service(
        "corral-up-vllm",
        [
            "corral.cli",
            "up",
            "--model",
            "smollm2",
            "--backend",
            "vllm",
            "--api-port",
            str(api),
            "--controller-port",
            str(free_port()),
            "--worker-port",
            str(free_port()),
            "--no-webui",
            *store,
        ],
        logs,
    ).start()
    try:
        up.wait_until(
            f"http://127.0.0.1:{api}/v1/models",
            900,
            ok=lambda r: [m["id"] for m in r.json()["data"]] == ["smollm2"],
        )
        yield f"http://127.0.0.1:{api}/v1"
    finally:
        up.stop(timeout=60)


def test_chat_and_stream_through_the_full_path(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    r = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=16, temperature=0
    )
    assert r.choices[0].message.content and r.choices[0].message.content.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens


def test_n_and_logprobs_through_the_full_path(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    r = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=8, n=3, seed=1, logprobs=True, top_logprobs=2
    )
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    for choice in r.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        assert all(len(e.top_logprobs) == 2 for e in choice.logprobs.content)


async def test_async_client_concurrent_streams(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)

    async def one() -> str:
        stream = await client.chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=8, stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async with client:
        texts = await asyncio.gather(*(one() for _ in range(4)))
    assert all(t.strip() for t in texts)


class Profile(BaseModel):
    name: str = Field(max_length=30)
    age: int = Field(ge=0, le=200)
    friendly: bool


def test_parse_and_json_schema_through_vllm(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    prompts = [f"Describe a person number {i} as a profile." for i in range(10)]
    for i, prompt in enumerate(prompts):
        reply = client.chat.completions.parse(
            model="smollm2",
            messages=[{"role": "user", "content": prompt}],
            response_format=Profile,
            max_tokens=200,
            seed=i,
        )
        assert isinstance(reply.choices[0].message.parsed, Profile)
        schema = Profile.model_json_schema()
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)
