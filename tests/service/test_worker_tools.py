"""Tool calling through the worker's OpenAI endpoint (serving_chat.py, tool_calls.py).

A scripted backend replies with a fixed text in the model's tool format (on the tiny model's
real tokenizer, one token per delta), so what vLLM's parser reads out of a reply is checked
exactly, streamed and whole. The tiny random-weight model on the hf backend checks the
refusals and that tool history renders.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from harness import serve, sse_events, worker_app
from transformers import AutoTokenizer

from model_worker.app import create_app
from model_worker.backends.base import Delta, GenerationRequest
from model_worker.model_files import ModelSource
from model_worker.settings import WorkerSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
NAMED_NOPE = {"type": "function", "function": {"name": "nope"}}
ASK = [{"role": "user", "content": "Weather in Paris and Rome?"}]
TWO_CALLS = (
    "Let me look.\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'
)


class ScriptedBackend:
    """Replies `reply` one token per delta, ending with `stop`; records the prompts."""

    name = "scripted"
    can_generate = True
    can_embed = False
    capacity = 4
    max_model_len = 4096
    chat_template = None

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.reply = ""
        self.prompts: list[str] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def healthy(self) -> bool:
        return True

    def running(self) -> int:
        return 0

    def adapters(self) -> list[str]:
        return []

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        self.prompts.append(self.tokenizer.decode(request.prompt_token_ids))
        ids = self.tokenizer(self.reply, add_special_tokens=False)["input_ids"]
        for index in range(request.options.n):
            for k, token in enumerate(ids):
                finish = "stop" if k == len(ids) - 1 else None
                yield [Delta(index, self.tokenizer.decode([token]), [token], None, finish)]

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]:
        raise NotImplementedError


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted(
    tiny_model_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedBackend]]:
    backend = ScriptedBackend(AutoTokenizer.from_pretrained(tiny_model_path))
    settings = WorkerSettings(
        model_path=str(tiny_model_path),
        model_name="tiny",
        conv_template="chatml",
        controller_urls=[],
    )
    source = ModelSource(path=tiny_model_path, name="tiny", origin=str(tiny_model_path))
    async with serve(create_app(settings, backend=backend, source=source)) as client:
        yield client, backend


async def chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={"model": "tiny", **body})


async def test_auto_reads_parallel_calls_out_of_the_reply(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, backend = scripted
    backend.reply = TWO_CALLS
    r = await chat(client, messages=ASK, tools=[WEATHER, TIME])
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Let me look.\n"
    calls = message["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert all(c["type"] == "function" and c["id"] for c in calls)
    assert len({c["id"] for c in calls}) == 2
    # the prompt offered the tools in the ChatML (hermes) format
    assert "<tools>\n" + json.dumps(WEATHER) in backend.prompts[-1]


async def test_auto_streams_tool_call_deltas_in_openai_shape(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, backend = scripted
    backend.reply = TWO_CALLS
    r = await chat(client, messages=ASK, tools=[WEATHER], stream=True)
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    deltas = [e["choices"][0] for e in events[:-1]]
    assert deltas[0]["delta"] == {"role": "assistant", "content": ""}
    assert deltas[-1]["finish_reason"] == "tool_calls"
    content = "".join(d["delta"].get("content") or "" for d in deltas)
    assert content == "Let me look.\n"
    calls: dict[int, dict[str, str]] = {}
    for d in deltas:
        for piece in d["delta"].get("tool_calls") or ():
            call = calls.setdefault(piece["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in piece:
                assert not call["id"], "the id comes once, with the first piece"
                assert piece["type"] == "function"
                call["id"] = piece["id"]
            function = piece.get("function", {})
            call["name"] += function.get("name", "")
            call["arguments"] += function.get("arguments", "")
    assert sorted(calls) == [0, 1]
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_weather"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert all(c["id"] for c in calls.values())


async def test_a_reply_without_calls_is_plain_content(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, backend = scripted
    backend.reply = "It is sunny in Paris."
    for stream in (False, True):
        r = await chat(client, messages=ASK, tools=[WEATHER], stream=stream)
        if stream:
            chunks = [e["choices"][0] for e in sse_events(r.text)[:-1]]
            assert "".join(c["delta"].get("content") or "" for c in chunks) == backend.reply
            assert not any("tool_calls" in c["delta"] for c in chunks)
            assert chunks[-1]["finish_reason"] == "stop"
        else:
            choice = r.json()["choices"][0]
            assert choice["message"] == {"role": "assistant", "content": backend.reply}
            assert choice["finish_reason"] == "stop"


async def test_tool_choice_none_offers_no_tools_and_parses_nothing(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, backend = scripted
    backend.reply = TWO_CALLS
    r = await chat(client, messages=ASK, tools=[WEATHER], tool_choice="none")
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == TWO_CALLS
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    assert "<tools>" not in backend.prompts[-1]


async def test_history_with_calls_and_results_renders_in_hermes_format(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, backend = scripted
    backend.reply = "Sunny."
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    r = await chat(client, messages=history, tools=[WEATHER])
    assert r.status_code == 200, r.text
    prompt = backend.prompts[-1]
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Paris"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\nsunny, 21 C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    ) in prompt


@pytest.mark.parametrize(
    ("patch", "param", "code"),
    [
        ({"functions": [WEATHER["function"]]}, "functions", "unsupported"),
        ({"function_call": "auto"}, "function_call", "unsupported"),
        ({"tool_choice": "required"}, "tool_choice", None),
        ({"tools": [WEATHER], "tool_choice": NAMED_NOPE}, "tool_choice", None),
        ({"tools": [WEATHER, WEATHER]}, "tools", None),
        ({"tools": []}, "tools", None),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools", None),
        ({"tools": [{"type": "retrieval"}]}, "tools", None),
    ],
)
async def test_bad_tool_requests_are_400_naming_the_field(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
    patch: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    client, _ = scripted
    r = await chat(client, messages=ASK, **patch)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] is not None and error["param"].startswith(param)
    if code:
        assert error["code"] == code


async def test_tool_message_needs_its_call_id(
    scripted: tuple[httpx.AsyncClient, ScriptedBackend],
) -> None:
    client, _ = scripted
    r = await chat(client, messages=[*ASK, {"role": "tool", "content": "x"}])
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("messages")


# ------------------------------------------------------------------ the tiny model on hf


async def test_template_without_tools_refuses_them(tiny_model_path: Path) -> None:
    """A family with no tool format cannot take tools: 400 unsupported, param tools (or
    messages, for tool calls in the history), instead of dropping them."""
    app = worker_app(tiny_model_path, conv_template="vicuna_v1.1")
    async with serve(app) as client:
        r = await chat(client, messages=ASK, tools=[WEATHER], max_tokens=2)
        assert r.status_code == 400
        assert r.json()["error"] | {"message": ""} == {
            "message": "",
            "type": "invalid_request_error",
            "param": "tools",
            "code": "unsupported",
        }
        history = [*ASK, {"role": "tool", "tool_call_id": "c", "content": "x"}]
        r = await chat(client, messages=history, max_tokens=2)
        assert (r.status_code, r.json()["error"]["param"]) == (400, "messages")
        # tool_choice none with a template that cannot express tools: plain chat
        r = await chat(client, messages=ASK, tools=[WEATHER], tool_choice="none", max_tokens=2)
        assert r.status_code == 200


async def test_hf_backend_with_tools_auto_replies(tiny_model_path: Path) -> None:
    """Random weights write no calls: with `auto` the reply is content, streamed or not."""
    app = worker_app(tiny_model_path, conv_template="chatml")
    async with serve(app) as client:
        body = {"messages": ASK, "tools": [TIME], "max_tokens": 4, "temperature": 0}
        whole = (await chat(client, **body)).json()["choices"][0]
        assert whole["finish_reason"] == "length"
        events = sse_events((await chat(client, **body, stream=True)).text)
        streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        assert streamed == whole["message"]["content"]


# ------------------------------------------------------------------ guaranteed calls (hf)

FORECAST = {
    "type": "function",
    "function": {
        "name": "forecast",
        "parameters": {
            "type": "object",
            "properties": {
                "unit": {"enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "hourly": {"type": "boolean"},
            },
            "required": ["unit", "days", "hourly"],
        },
    },
}
PARAMETERS = {**FORECAST["function"]["parameters"], "additionalProperties": False}
NAMED = {"type": "function", "function": {"name": "forecast"}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tiny_chatml(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The tiny model with a 2048-token context: the tools preamble alone takes ~500 of its
    byte-level tokens (RoPE positions need no weights, so only the config changes)."""
    path = tmp_path_factory.mktemp("models") / "tiny-2k"
    shutil.copytree(tiny_model_path, path)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
    async with serve(worker_app(path, conv_template="chatml", capacity=2)) as client:
        yield client


def _calls_of(choice: dict[str, Any]) -> list[dict[str, Any]]:
    assert choice["message"]["content"] is None
    return [c["function"] for c in choice["message"]["tool_calls"]]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_named_function_is_always_called_with_valid_arguments(
    tiny_chatml: httpx.AsyncClient, seed: int
) -> None:
    """Random weights would write anything: constrained decoding makes it the call."""
    r = await chat(
        tiny_chatml,
        messages=ASK,
        tools=[TIME, FORECAST],
        tool_choice=NAMED,
        max_tokens=60,
        seed=seed,
        n=2,
    )
    assert r.status_code == 200, r.text
    for choice in r.json()["choices"]:
        assert choice["finish_reason"] == "stop"  # as OpenAI ends a named call
        (call,) = _calls_of(choice)
        assert call["name"] == "forecast"
        jsonschema.validate(json.loads(call["arguments"]), PARAMETERS)


async def test_a_named_function_streams_as_one_call(tiny_chatml: httpx.AsyncClient) -> None:
    r = await chat(
        tiny_chatml,
        messages=ASK,
        tools=[FORECAST],
        tool_choice=NAMED,
        max_tokens=60,
        seed=4,
        stream=True,
    )
    deltas = [e["choices"][0] for e in sse_events(r.text)[:-1]]
    pieces = [p for d in deltas for p in d["delta"].get("tool_calls") or ()]
    assert {p["index"] for p in pieces} == {0}
    assert pieces[0]["id"] and pieces[0]["function"]["name"] == "forecast"
    arguments = "".join(p["function"].get("arguments", "") for p in pieces)
    jsonschema.validate(json.loads(arguments), PARAMETERS)
    assert deltas[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
async def test_required_always_calls_one_of_the_tools(
    tiny_chatml: httpx.AsyncClient, stream: bool
) -> None:
    by_name = {"forecast": PARAMETERS, "get_time": {"type": "object", "properties": {}}}
    for seed in (5, 6):
        r = await chat(
            tiny_chatml,
            messages=ASK,
            tools=[TIME, FORECAST],
            tool_choice="required",
            parallel_tool_calls=False,
            max_tokens=80,
            seed=seed,
            stream=stream,
        )
        assert r.status_code == 200, r.text
        if stream:
            deltas = [e["choices"][0] for e in sse_events(r.text)[:-1]]
            pieces = [p for d in deltas for p in d["delta"].get("tool_calls") or ()]
            calls = [
                {
                    "name": pieces[0]["function"]["name"],
                    "arguments": "".join(p["function"].get("arguments", "") for p in pieces),
                }
            ]
            finish = deltas[-1]["finish_reason"]
        else:
            choice = r.json()["choices"][0]
            calls, finish = _calls_of(choice), choice["finish_reason"]
        assert finish == "tool_calls"
        assert len(calls) == 1
        jsonschema.validate(json.loads(calls[0]["arguments"]), by_name[calls[0]["name"]])


async def test_forced_calls_and_response_format_do_not_mix(tiny_chatml: httpx.AsyncClient) -> None:
    r = await chat(
        tiny_chatml,
        messages=ASK,
        tools=[FORECAST],
        tool_choice="required",
        response_format={"type": "json_object"},
        max_tokens=4,
    )
    assert (r.status_code, r.json()["error"]["param"]) == (400, "response_format")
