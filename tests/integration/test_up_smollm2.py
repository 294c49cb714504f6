"""`corral up` on the real default model (SmolLM2-135M-Instruct), driven by the openai SDK.

Answers differ between engines and versions, so the checks are structural: non-empty text,
finish reasons, usage that adds up, deltas that join to a sensible reply.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import openai
import pytest
from procs import Service, children_of, free_port, pid_alive

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, store_url: str | None) -> Iterator[dict]:
    logs = tmp_path_factory.mktemp("up-logs")
    api, ctl, worker = free_port(), free_port(), free_port()
    store = ["--store-url", store_url] if store_url else []
    up = Service(
        "corral-up",
        [
            "corral.cli",
            "up",
            "--model",
            "smollm2",
            "--backend",
            "hf",
            "--api-port",
            str(api),
            "--controller-port",
            str(ctl),
            "--worker-port",
            str(worker),
            "--webui-port",
            str(free_port()),
            *store,
        ],
        logs,
    ).start()
    try:
        base = f"http://127.0.0.1:{api}"
        # the first run converts the GGUF once (about a minute); later runs reuse it
        up.wait_until(
            f"{base}/v1/models",
            900,
            ok=lambda r: [m["id"] for m in r.json()["data"]] == ["smollm2"],
        )
        # then the web UI comes up; the ready line is printed once everything answers
        deadline = time.monotonic() + 120
        while "corral: ready" not in up.log_path.read_text():
            assert up.alive() and time.monotonic() < deadline, up.log_tail()
            time.sleep(0.2)
        yield {"base": f"{base}/v1", "service": up}
    finally:
        up.stop()


@pytest.fixture
def client(platform: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform["base"], api_key="unused", max_retries=0)


def test_ready_line_names_the_api_and_the_web_ui(platform: dict) -> None:
    ready = next(
        line
        for line in platform["service"].log_path.read_text().splitlines()
        if line.startswith("corral: ready")
    )
    assert f"OpenAI API at {platform['base']} serving smollm2" in ready
    assert "web UI at http://127.0.0.1:" in ready


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["smollm2"]


def test_chat_sync(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert 0 < r.usage.completion_tokens <= 24
    assert "<|im_end|>" not in choice.message.content  # the end-of-turn token is not text


def test_chat_stream_sync_deltas_join_to_the_reply(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    assert text.strip()
    assert finish in (["stop"], ["length"])
    assert usage is not None and usage.completion_tokens > 0
    whole = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    assert text == whole.choices[0].message.content


def test_chat_respects_max_tokens(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Write a long poem about rivers."}],
        max_tokens=5,
        temperature=0,
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5


def test_completions_sync(client: openai.OpenAI) -> None:
    r = client.completions.create(
        model="smollm2", prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert r.choices[0].text.strip()
    assert r.usage is not None and r.usage.completion_tokens <= 8


async def test_async_client_stream_and_not(platform: dict) -> None:
    client = openai.AsyncOpenAI(base_url=platform["base"], api_key="unused", max_retries=0)
    async with client:
        plain, stream = await asyncio.gather(
            client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16),
            client.chat.completions.create(
                model="smollm2", messages=QUESTION, max_tokens=16, stream=True
            ),
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert plain.choices[0].message.content
    assert "".join(pieces).strip()


def test_errors_reach_the_sdk_as_typed_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert nf.value.status_code == 404
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=5)
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]


def test_responses_api_text_in_text_out(client: openai.OpenAI) -> None:
    resp = client.responses.create(
        model="smollm2",
        input="What is the capital of France? Answer in one word.",
        max_output_tokens=24,
        temperature=0,
        store=False,
    )
    assert resp.status in ("completed", "incomplete")
    assert resp.output_text.strip()
    assert resp.usage is not None and 0 < resp.usage.output_tokens <= 24
    chat = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    assert resp.output_text == chat.choices[0].message.content


def test_responses_api_stream(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="smollm2",
            input=[{"role": "user", "content": "Name a colour."}],
            instructions="Answer in one word.",
            max_output_tokens=16,
            temperature=0,
            stream=True,
        )
    )
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.strip()
    assert events[-1].response.output_text == text  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="smollm2", input="hi", previous_response_id="resp_x")
    assert bad.value.body["code"] == "unsupported"  # type: ignore[index]


def test_sigint_stops_every_child(platform: dict) -> None:
    """Last test of the module: Ctrl-C leaves no process behind."""
    up: Service = platform["service"]
    kids = children_of(up.pid)
    assert len(kids) == 4  # controller, worker, api, webui
    up.signal(signal.SIGINT)
    assert up.proc is not None
    assert up.proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while any(pid_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if pid_alive(k)]
