"""Tool calling through `corral up` on SmolLM2 (hf and llamacpp), driven by the real openai SDK
and LangChain.

SmolLM2's own chat_template takes no tools, so its ChatML family renders them (hermes) and
vLLM's hermes parser reads replies. A 135M model rarely decides to call a tool by itself, so
the round trips force the call (a named function or `required`: constrained decoding), then
feed the tool's result back and ask for the final answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from procs import corral_up_smollm2

PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": PARAMETERS,
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "description": "The current time", "parameters": {}},
}
ASK = {"role": "user", "content": "What is the weather like in Paris today?"}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module", params=["hf", "llamacpp"])
def base_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    backend = request.param
    if backend == "llamacpp":
        pytest.importorskip("llama_cpp")
    logs = tmp_path_factory.mktemp(f"up-tools-{backend}")
    with corral_up_smollm2(logs, backend) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        yield client


def _tool_result(call: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}


def test_named_function_gives_exactly_that_call_with_valid_arguments(
    client: openai.OpenAI,
) -> None:
    for seed in range(3):
        reply = client.chat.completions.create(
            model="smollm2",
            messages=[ASK],
            tools=[TIME, WEATHER],  # type: ignore[list-item]
            tool_choice=NAMED,  # type: ignore[arg-type]
            max_tokens=100,
            temperature=0.7,
            seed=seed,
        )
        calls = reply.choices[0].message.tool_calls
        assert calls is not None and len(calls) == 1
        assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
        jsonschema.validate(json.loads(calls[0].function.arguments), PARAMETERS)  # type: ignore[union-attr]


def test_round_trip_call_result_answer(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="smollm2",
        messages=[ASK],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,  # greedy, a 135M model would repeat calls until max_tokens
        max_tokens=100,
        temperature=0,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    history = [ASK, choice.message.model_dump(exclude_none=True), _tool_result(calls[0])]
    final = client.chat.completions.create(
        model="smollm2",
        messages=history,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
        max_tokens=40,
        temperature=0,
    )
    answer = final.choices[0]
    assert answer.message.content and answer.message.content.strip()
    assert not answer.message.tool_calls
    assert answer.finish_reason in ("stop", "length")


def test_round_trip_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[ASK],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice=NAMED,  # type: ignore[arg-type]
        max_tokens=100,
        temperature=0,
        stream=True,
    )
    call: dict[str, str] = {"id": "", "name": "", "arguments": ""}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for piece in choice.delta.tool_calls or ():
                assert piece.index == 0
                call["id"] += piece.id or ""
                if piece.function is not None:
                    call["name"] += piece.function.name or ""
                    call["arguments"] += piece.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "stop"
    assert call["id"] and call["name"] == "get_weather"
    jsonschema.validate(json.loads(call["arguments"]), PARAMETERS)
    assistant = {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ],
    }
    tool = {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 21}'}
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[ASK, assistant, tool],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
        max_tokens=40,
        temperature=0,
        stream=True,
    )
    text, tool_pieces = "", 0
    for chunk in answer:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            tool_pieces += len(choice.delta.tool_calls or ())
    # `auto`: the model answers, or (rarely, for a 135M model) calls again
    assert text.strip() or tool_pieces


def test_langchain_bind_tools(base_url: str, request: pytest.FixtureRequest) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"sunny in {city}"

    http = httpx.Client()  # closed here: LangChain never closes the one it would make
    request.addfinalizer(http.close)
    llm = ChatOpenAI(
        model="smollm2",
        base_url=base_url,
        api_key="unused",
        max_retries=0,
        temperature=0,
        http_client=http,
    )
    forced = llm.bind_tools([get_weather], tool_choice="get_weather")
    message = forced.invoke("What is the weather in Rome?")
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"].get("city"), str)
    # the result goes back as a ToolMessage and the model answers
    reply = llm.bind_tools([get_weather]).invoke(
        ["What is the weather in Rome?", message, get_weather.invoke(call)]
    )
    assert reply.content or reply.tool_calls


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(
    base_url: str, method: str, request: pytest.FixtureRequest
) -> None:
    """LangChain's structured output, both ways it asks for it (a json_schema response format,
    or a forced tool call), returns the model object: constrained decoding makes it parse."""
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class City(BaseModel):
        name: str = Field(description="the city's name")
        country: str = Field(description="the country it is in")

    http = httpx.Client()
    request.addfinalizer(http.close)
    llm = ChatOpenAI(
        model="smollm2",
        base_url=base_url,
        api_key="unused",
        max_retries=0,
        temperature=0,
        max_tokens=64,
        http_client=http,
    )
    city = llm.with_structured_output(City, method=method).invoke(
        "Name the capital of France and its country."
    )
    assert isinstance(city, City)
