"""`corral up --backend llamacpp` on the default model (the SmolLM2 GGUF, served quantized as it
is) through the openai SDK, and greedy agreement with the converted float32 model.

One platform for the module (embedded state: the store is not the subject here). Answers are a
real model's, so the checks are structural, never wording.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from procs import Service, free_port
from requires import require

from model_worker.backends.base import GenerationRequest, SamplingOptions
from model_worker.model_files import resolve_model

require("llama_cpp")
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
SECRET = "llamacpp-test-secret"  # corral up's control secret, given so the test can look in
INTERNAL = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("up-llamacpp")
    api, ctl, worker = free_port(), free_port(), free_port()
    up = Service(
        "corral-up",
        ["corral.cli", "up", "--model", "smollm2", "--backend", "llamacpp", "--no-webui",
         "--api-port", str(api), "--controller-port", str(ctl), "--worker-port", str(worker)],
        logs,
        env={"CORRAL_CONTROL_SECRET": SECRET},
    ).start()  # fmt: skip
    try:
        up.wait_until(f"http://127.0.0.1:{api}/v1/models", 300, ok=lambda r: bool(r.json()["data"]))
        deadline = time.monotonic() + 60
        while "corral: ready" not in up.log_path.read_text():
            assert up.alive() and time.monotonic() < deadline, up.log_tail()
            time.sleep(0.2)
        yield {
            "base": f"http://127.0.0.1:{api}/v1",
            "controller": f"http://127.0.0.1:{ctl}",
            "worker": f"http://127.0.0.1:{worker}",
        }
    finally:
        up.stop()


@pytest.fixture
def client(platform: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform["base"], api_key="unused", max_retries=0)


def test_the_worker_registered_as_llamacpp(platform: dict[str, Any]) -> None:
    (worker,) = httpx.get(f"{platform['controller']}/internal/workers", headers=INTERNAL).json()
    registration = worker["registration"]
    assert registration["backend"] == "llamacpp"
    assert registration["models"] == ["smollm2"] and registration["capacity"] == 1
    assert registration["template"] == "hf-chat-template"  # from the GGUF's metadata


def test_chat_and_its_stream_agree(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(
        model="smollm2",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,  # type: ignore[arg-type]
    )
    assert whole.choices[0].finish_reason == "stop"
    assert whole.usage is not None and 0 < whole.usage.completion_tokens < 24
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and text.strip()
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_and_max_tokens(client: openai.OpenAI) -> None:
    prompt = "The days of the week are Monday, Tuesday,"
    full = client.completions.create(model="smollm2", prompt=prompt, max_tokens=12, temperature=0)
    text = full.choices[0].text
    word = text.split()[1]  # cut at the second word it wrote
    cut = client.completions.create(
        model="smollm2", prompt=prompt, max_tokens=12, temperature=0, stop=[word]
    )
    assert cut.choices[0].text == text[: text.index(word)]
    assert cut.choices[0].finish_reason == "stop"
    long = client.completions.create(
        model="smollm2", prompt=prompt, max_tokens=5, extra_body={"ignore_eos": True}
    )
    assert long.choices[0].finish_reason == "length"
    assert long.usage is not None and long.usage.completion_tokens == 5


def test_n_and_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="smollm2",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=8,
        n=2,
        seed=3,
        logprobs=True,
        top_logprobs=2,
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage is not None
    assert r.usage.completion_tokens == sum(
        len(c.logprobs.content or []) for c in r.choices if c.logprobs
    )
    for choice in r.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        for entry in choice.logprobs.content:
            assert entry.logprob <= 0 and len(entry.top_logprobs) == 2


def test_a_client_that_leaves_aborts_its_request(
    client: openai.OpenAI, platform: dict[str, Any]
) -> None:
    stream = client.completions.create(
        model="smollm2",
        prompt="Count to one thousand:",
        max_tokens=1000,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    for seen, _ in enumerate(stream):
        if seen == 3:
            break
    stream.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = httpx.get(f"{platform['worker']}/internal/status", headers=INTERNAL).json()
        if status["in_flight"] == 0 and status["engine_running"] == 0:
            break
        time.sleep(0.05)
    assert status["in_flight"] == 0 and status["engine_running"] == 0
    # its one context (--parallel 1) is free again: the next request is served at once
    r = client.completions.create(model="smollm2", prompt="Hi", max_tokens=2, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length")


PROMPTS = [
    "The capital of France is",
    "1, 2, 3, 4, 5,",
    "Monday, Tuesday, Wednesday,",
    "def fibonacci(n):\n",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
]


async def test_greedy_output_agrees_with_the_converted_model() -> None:
    """What is compared: 16 greedy token ids for the same prompt ids, llamacpp on the Q4_1 GGUF
    vs the hf backend on its float32 conversion, with each engine's own logprobs. The
    conversion holds exactly the dequantized weights, so the model is the same; what differs is
    arithmetic (llama.cpp multiplies the 4-bit weights with 8-bit-quantized activations). That
    moves logprobs by hundredths of a nat, which can flip a greedy choice only where the two
    best tokens are about as likely. So: the engines agree token for token up to their first
    difference, that difference falls where the model is torn (top-2 within 0.5 nats in one
    engine), every prompt agrees on its first 3 tokens at least, and the chosen tokens'
    logprobs agree closely where the tokens do."""
    from model_worker.backends.hf import HFBackend
    from model_worker.backends.llamacpp import LlamaCppBackend

    source = resolve_model("smollm2")
    llama = LlamaCppBackend(source.gguf)  # type: ignore[arg-type]
    hf = HFBackend(source.hf_dir(), dtype="float32")
    await llama.start()
    await hf.start()
    logprob_diffs: list[float] = []
    try:
        for prompt_text in PROMPTS:
            prompt = hf.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
            assert prompt == llama.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
            ours, theirs = await _greedy(llama, prompt), await _greedy(hf, prompt)
            same = next(
                (i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a[0] != b[0]),
                len(ours),
            )
            assert same >= 3, (prompt_text, ours[:4], theirs[:4])
            if same < len(ours):
                torn = min(ours[same][2], theirs[same][2])
                assert torn < 0.5, (prompt_text, same, ours[same], theirs[same])
            logprob_diffs += [
                abs(a[1] - b[1]) for a, b in zip(ours[:same], theirs[:same], strict=True)
            ]
    finally:
        await llama.close()
        await hf.close()
    assert len(logprob_diffs) >= 40
    assert sum(logprob_diffs) / len(logprob_diffs) < 0.1


async def _greedy(backend: Any, prompt: list[int]) -> list[tuple[int, float, float]]:
    """(token id, its logprob, the gap between the two most likely tokens) per step."""
    opts = SamplingOptions(max_tokens=16, temperature=0, ignore_eos=True, logprobs=2)
    steps: list[tuple[int, float, float]] = []
    async for deltas in backend.generate(GenerationRequest("agree", prompt, opts)):
        for d in deltas:
            for lp in d.logprobs or []:
                steps.append((lp.token_id, lp.logprob, lp.top[0][1] - lp.top[1][1]))
    return steps
