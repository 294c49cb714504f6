"""Structured output and the field policy on the worker's own server (hf backend, tiny model).

The tiny model has random weights: whatever it would say, the constraint makes it JSON that
parses and validates.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from harness import serve, sse_events, worker_app

pytestmark = pytest.mark.asyncio(loop_scope="module")
MSGS = [{"role": "user", "content": "Describe a person as JSON."}]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "member": {"type": "boolean"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    },
    "required": ["name", "age", "member", "tags"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": PERSON, "strict": True},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def worker(tiny_model_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(worker_app(tiny_model_path, capacity=2)) as client:
        yield client


async def chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": MSGS, **body}
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_json_schema_output_parses_and_validates(
    worker: httpx.AsyncClient, seed: int
) -> None:
    r = await chat(worker, response_format=SCHEMA_FORMAT, max_tokens=300, seed=seed, n=2)
    assert r.status_code == 200, r.text
    for choice in r.json()["choices"]:
        assert choice["finish_reason"] == "stop"
        jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


async def test_json_schema_greedy_and_streamed_validates(worker: httpx.AsyncClient) -> None:
    r = await chat(
        worker, response_format=SCHEMA_FORMAT, max_tokens=300, temperature=0, stream=True
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    jsonschema.validate(json.loads(text), PERSON)


async def test_without_response_format_the_random_model_writes_no_json(
    worker: httpx.AsyncClient,
) -> None:
    """The constraint is what makes the JSON: unconstrained, the same request is noise."""
    r = await chat(worker, max_tokens=40, temperature=0)
    with pytest.raises(ValueError):
        json.loads(r.json()["choices"][0]["message"]["content"])


@pytest.mark.parametrize("seed", [1, 2])
async def test_json_object_output_is_an_object(worker: httpx.AsyncClient, seed: int) -> None:
    r = await chat(worker, response_format={"type": "json_object"}, max_tokens=400, seed=seed)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert isinstance(json.loads(choice["message"]["content"]), dict)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "frog"}},
                }
            },
            "response_format",
            None,
        ),
        ({"reasoning_effort": "high"}, "reasoning_effort", "unsupported"),
        ({"store": True}, "store", "unsupported"),
        ({"tempreture": 0}, "tempreture", "unknown_parameter"),
    ],
)
async def test_bad_fields_are_400_naming_them(
    worker: httpx.AsyncClient, body: dict[str, Any], param: str, code: str | None
) -> None:
    r = await chat(worker, **body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["param"], err["code"]) == (param, code)


async def test_completions_refuse_best_of_and_embeddings_dimensions(
    worker: httpx.AsyncClient,
) -> None:
    r = await worker.post("/v1/completions", json={"model": "tiny", "prompt": "x", "best_of": 2})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "best_of")
    r = await worker.post("/v1/embeddings", json={"model": "tiny", "input": "x", "dimensions": 8})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "unsupported")


async def test_logit_bias_forces_and_bans_tokens(
    worker: httpx.AsyncClient, tiny_model_path: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    body = {"model": "tiny", "prompt": "one two", "max_tokens": 4, "temperature": 0}
    r = await worker.post("/v1/completions", json={**body, "logit_bias": {"300": 100}})
    assert r.json()["choices"][0]["text"] == tokenizer.decode([300] * 4)
    # -100 on every token but two: only those two can come
    ban = {str(i): -100 for i in range(len(tokenizer)) if i not in (300, 301)}
    r = await worker.post(
        "/v1/completions",
        json={**body, "seed": 1, "temperature": 1.0, "logit_bias": ban, "logprobs": 0},
    )
    tokens = r.json()["choices"][0]["logprobs"]["tokens"]
    allowed = {tokenizer.decode([300]), tokenizer.decode([301])}
    assert len(tokens) == 4 and set(tokens) <= allowed
    r = await worker.post("/v1/completions", json={**body, "logit_bias": {"99999": 1}})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "logit_bias")
