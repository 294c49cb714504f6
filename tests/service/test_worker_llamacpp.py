"""The llamacpp backend in a worker (real uvicorn on loopback) serving the SmolLM2 GGUF as it is.

SmolLM2-135M Q4_1 loads in a fraction of a second and decodes tens of tokens per second on a
CPU, so this runs at the service tier. Answers are a real model's: the checks are structural
(shapes, finish reasons, usage that adds up, reproducibility), never wording.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from harness import loopback, sse_events, worker_app
from requires import require

from model_worker.backends import start_backend
from model_worker.backends.base import GenerationRequest, SamplingOptions
from model_worker.backends.llamacpp import LlamaCppBackend
from model_worker.model_files import ModelSource, resolve_model
from model_worker.settings import WorkerSettings

require("llama_cpp")
pytestmark = pytest.mark.asyncio(loop_scope="module")
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
CHATML_PROMPT = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[dict[str, Any]]:
    app = worker_app("smollm2", backend="llamacpp", model_name="smollm2", parallel=2)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(loopback(app))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=120))
        yield {"client": client, "app": app}


async def chat(c: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await c.post(
        "/v1/chat/completions", json={"model": "smollm2", "messages": QUESTION, **body}
    )


async def complete(c: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await c.post("/v1/completions", json={"model": "smollm2", **body})


async def test_the_template_comes_from_the_gguf_metadata(stack: dict[str, Any]) -> None:
    template = (await stack["client"].get("/internal/template")).json()
    assert template["name"] == "hf-chat-template" and template["reason"] == "chat_template"
    assert "<|im_start|>" in template["source"]
    assert stack["app"].state.service.backend.name == "llamacpp"


async def test_chat_answers_and_ends_its_turn(stack: dict[str, Any]) -> None:
    body = (await chat(stack["client"], max_tokens=32, temperature=0)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"  # the model's <|im_end|>, an end-of-generation id
    assert choice["message"]["content"].strip() and "<|im_end|>" not in choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] < 32


async def test_stream_deltas_join_to_the_greedy_reply(stack: dict[str, Any]) -> None:
    c = stack["client"]
    r = await chat(
        c, max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
    whole = (await chat(c, max_tokens=24, temperature=0)).json()
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]


async def test_max_tokens_ends_with_length(stack: dict[str, Any]) -> None:
    r = await complete(stack["client"], prompt="Once upon a time", max_tokens=7, ignore_eos=True)
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 7


async def test_min_tokens_holds_back_the_end_of_turn(stack: dict[str, Any]) -> None:
    short = (await chat(stack["client"], max_tokens=40, temperature=0)).json()
    assert short["choices"][0]["finish_reason"] == "stop"
    held = short["usage"]["completion_tokens"] + 5
    r = (await chat(stack["client"], max_tokens=40, min_tokens=held, temperature=0)).json()
    assert r["usage"]["completion_tokens"] >= held


async def test_stop_string_cuts_the_text_and_is_never_emitted(stack: dict[str, Any]) -> None:
    c = stack["client"]
    prompt = "The days of the week are Monday, Tuesday,"
    full = (await complete(c, prompt=prompt, max_tokens=16, temperature=0)).json()
    text = full["choices"][0]["text"]
    cut = text.index(",", 1) if "," in text[1:] else len(text) // 2
    stop = text[cut : cut + 2]
    r = (await complete(c, prompt=prompt, max_tokens=16, temperature=0, stop=[stop])).json()
    assert r["choices"][0]["text"] == text[: text.index(stop)]
    assert r["choices"][0]["finish_reason"] == "stop"


async def test_a_special_token_stop_fires(stack: dict[str, Any]) -> None:
    """ignore_eos drops the model's own end-of-turn ids, so only the requested stop string
    `<|im_end|>` (a special token, invisible in decoded text) can end this completion."""
    r = await complete(
        stack["client"],
        prompt=CHATML_PROMPT,
        max_tokens=200,
        temperature=0,
        ignore_eos=True,
        stop=["<|im_end|>"],
    )
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert r.json()["usage"]["completion_tokens"] < 200
    assert "user" not in choice["text"]  # it did not run on into the next turn


async def test_n_choices_with_a_seed_are_different_and_reproducible(stack: dict[str, Any]) -> None:
    c = stack["client"]
    body = {"max_tokens": 12, "n": 3, "seed": 7, "temperature": 1.0, "ignore_eos": True}
    first, again = (await chat(c, **body)).json(), (await chat(c, **body)).json()
    texts = [ch["message"]["content"] for ch in first["choices"]]
    assert [ch["index"] for ch in first["choices"]] == [0, 1, 2]
    assert len(set(texts)) > 1
    assert texts == [ch["message"]["content"] for ch in again["choices"]]
    assert first["usage"]["completion_tokens"] == 36


async def test_logprobs_are_the_models(stack: dict[str, Any]) -> None:
    r = await chat(stack["client"], max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == r.json()["usage"]["completion_tokens"]
    for entry in content:
        tops = entry["top_logprobs"]
        assert len(tops) == 3
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert entry["logprob"] <= 0 and math.isclose(entry["logprob"], tops[0]["logprob"])
        assert entry["token"] == tops[0]["token"]  # greedy takes the most likely token
    assert sum(math.exp(t["logprob"]) for t in content[0]["top_logprobs"]) <= 1.0 + 1e-6


async def test_completion_logprobs_offsets_follow_the_text(stack: dict[str, Any]) -> None:
    r = await complete(stack["client"], prompt="Paris is", max_tokens=5, temperature=0, logprobs=2)
    choice = r.json()["choices"][0]
    lp = choice["logprobs"]
    assert "".join(lp["tokens"]) == choice["text"]
    assert lp["text_offset"][0] == 0 and all(len(t) <= 2 for t in lp["top_logprobs"])


async def test_embeddings_are_unit_vectors_and_deterministic(stack: dict[str, Any]) -> None:
    c = stack["client"]
    r = await c.post(
        "/v1/embeddings",
        json={"model": "smollm2", "input": ["hello world", "bonjour", "hello world"]},
    )
    assert r.status_code == 200
    vectors = [d["embedding"] for d in r.json()["data"]]
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert r.json()["usage"]["prompt_tokens"] > 0
    after = (await chat(c, max_tokens=24, temperature=0)).json()  # contexts still generate
    assert after["choices"][0]["message"]["content"].strip()


async def test_disconnect_aborts_and_frees_both_contexts(stack: dict[str, Any]) -> None:
    c = stack["client"]
    body = {
        "model": "smollm2",
        "prompt": "Count:",
        "max_tokens": 400,
        "ignore_eos": True,
        "stream": True,
    }
    for _ in range(2):  # both contexts (--parallel 2) taken, then dropped mid-stream
        async with c.stream("POST", "/v1/completions", json=body) as r:
            seen = 0
            async for line in r.aiter_lines():
                seen += line.startswith("data: ")
                if seen >= 3:
                    break
    for _ in range(100):
        status = (await c.get("/internal/status")).json()
        if status["engine_running"] == 0 and status["in_flight"] == 0:
            break
        await asyncio.sleep(0.05)
    assert status["engine_running"] == 0 and status["in_flight"] == 0
    r = await complete(c, prompt="Hi", max_tokens=3, ignore_eos=True)
    assert r.json()["usage"]["completion_tokens"] == 3


async def test_two_contexts_decode_at_once_without_blocking_the_loop(stack: dict[str, Any]) -> None:
    """Two long streams run together (--parallel 2) while the worker still answers at once."""
    c = stack["client"]
    body = {
        "model": "smollm2",
        "prompt": "Count:",
        "max_tokens": 40,
        "ignore_eos": True,
        "stream": True,
    }
    order: list[str] = []

    async def stream(name: str) -> None:
        async with c.stream("POST", "/v1/completions", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    order.append(name)

    async def probe() -> None:
        while len(order) < 4:
            await asyncio.sleep(0.01)
        assert (await c.get("/health")).status_code == 200
        order.append("health")

    await asyncio.gather(stream("a"), stream("b"), probe())
    assert order.index("health") < len(order) - 10  # answered while both were decoding
    first_b = order.index("b")
    assert "a" in order[first_b:] and order.index("a") < len(order) - 10  # interleaved


async def test_a_context_reusing_its_cache_answers_like_a_fresh_one(stack: dict[str, Any]) -> None:
    """The next turn decodes only what differs from the cached prefix; the tokens must be what a
    context that decoded the whole prompt gives."""
    backend = stack["app"].state.service.backend
    tok = backend.tokenizer
    first = tok(CHATML_PROMPT)["input_ids"]
    second = tok(
        CHATML_PROMPT + "Blue.<|im_end|>\n<|im_start|>user\nAnother one?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )["input_ids"]

    async def greedy(engine: Any, prompt: list[int]) -> list[int]:
        out: list[int] = []
        opts = SamplingOptions(max_tokens=12, temperature=0, ignore_eos=True)
        async for deltas in engine.generate(GenerationRequest("cache", prompt, opts)):
            out += [t for d in deltas for t in d.token_ids]
        return out

    fresh_backend = LlamaCppBackend(resolve_model("smollm2").gguf)  # type: ignore[arg-type]
    await fresh_backend.start()
    try:
        fresh = await greedy(fresh_backend, second)
    finally:
        await fresh_backend.close()
    for _ in range(2):  # both contexts (they take turns) hold `first` and its reply
        await greedy(backend, first)
    assert [await greedy(backend, second), await greedy(backend, second)] == [fresh, fresh]


PROFILE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 15}, "maxItems": 3},
    },
    "required": ["name", "age", "hobbies"],
    "additionalProperties": False,
}


async def test_json_schema_output_validates(stack: dict[str, Any]) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": PROFILE, "strict": True}}
    messages = [{"role": "user", "content": "Describe a person."}]
    r = await chat(
        stack["client"], messages=messages, response_format=fmt, max_tokens=120, n=2, seed=4
    )
    assert r.status_code == 200, r.text
    for choice in r.json()["choices"]:
        assert choice["finish_reason"] == "stop"
        jsonschema.validate(json.loads(choice["message"]["content"]), PROFILE)
    r = await chat(
        stack["client"], response_format={"type": "json_object"}, max_tokens=120, temperature=0
    )
    assert isinstance(json.loads(r.json()["choices"][0]["message"]["content"]), dict)


async def test_logit_bias_forces_a_token(stack: dict[str, Any]) -> None:
    r = await complete(
        stack["client"], prompt="Hi", max_tokens=3, temperature=0, logit_bias={"300": 100}
    )
    tok = stack["app"].state.service.backend.tokenizer
    assert r.json()["choices"][0]["text"] == tok.decode([300] * 3)


async def test_llamacpp_needs_a_gguf(tiny_model_path: Any) -> None:
    source = ModelSource(tiny_model_path, "tiny", str(tiny_model_path))
    settings = WorkerSettings(backend="llamacpp", controller_urls=[])
    with pytest.raises(ValueError, match="llamacpp backend serves GGUF files"):
        await start_backend(settings, source)
    with pytest.raises(ValueError, match="served by the vllm backend"):
        await start_backend(
            WorkerSettings(backend="llamacpp", controller_urls=[], lora=["a=/x"]),
            resolve_model("smollm2"),
        )


async def test_auto_serves_a_gguf_with_llamacpp_and_says_why(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_conversion(*_: Any) -> None:
        raise AssertionError("llamacpp serves the GGUF as it is: nothing may be converted")

    monkeypatch.setattr("model_worker.model_files.convert_gguf", no_conversion)
    with caplog.at_level(logging.INFO, logger="model_worker.backends"):
        backend = await start_backend(WorkerSettings(controller_urls=[]), resolve_model("smollm2"))
    try:
        assert backend.name == "llamacpp"
        assert "is a GGUF and llama-cpp-python is installed" in caplog.text
    finally:
        await backend.close()


async def test_auto_without_the_extra_converts_as_before(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[str] = []

    def vllm(settings: WorkerSettings, source: ModelSource) -> Any:
        chosen.append("vllm")
        raise ImportError("no vllm here")

    def hf(settings: WorkerSettings, source: ModelSource) -> Any:
        chosen.append("hf")
        return _Started()

    monkeypatch.setattr("model_worker.backends.llamacpp_installed", lambda: False)
    monkeypatch.setattr("model_worker.backends._vllm", vllm)
    monkeypatch.setattr("model_worker.backends._hf", hf)
    with caplog.at_level(logging.INFO, logger="model_worker.backends"):
        await start_backend(WorkerSettings(controller_urls=[]), resolve_model("smollm2"))
    assert chosen == ["vllm", "hf"]
    assert "llama-cpp-python is not installed" in caplog.text


class _Started:
    async def start(self) -> None:
        return None


def _gauge(metrics: str, name: str) -> float:
    (line,) = [ln for ln in metrics.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


async def test_the_prefix_cache_hit_rate_is_exported(stack: dict[str, Any]) -> None:
    """The same prompt again finds its prefix in a slot's KV cache; /metrics says how much."""
    c = stack["client"]
    before = (await c.get("/metrics")).text
    hits0 = _gauge(before, "corral_worker_prefix_cache_hit_tokens")
    queried0 = _gauge(before, "corral_worker_prefix_cache_queried_tokens")
    for _ in range(3):  # two slots taken in turn: the third request lands on the first's slot
        assert (await chat(c, max_tokens=1, temperature=0)).status_code == 200
    after = (await c.get("/metrics")).text
    hits = _gauge(after, "corral_worker_prefix_cache_hit_tokens") - hits0
    queried = _gauge(after, "corral_worker_prefix_cache_queried_tokens") - queried0
    assert queried > 0 and hits > 0
    assert 0 < _gauge(after, "corral_worker_prefix_cache_hit_rate") <= 1
