"""A worker's own bounds (model_worker/serving_*.py): it checks the request bounds again
before it takes a slot, so a request over one is a 400 with `param` that costs nothing, and a
request at the bound is served. Templating and tokenizing run in the prompt thread, after a
slot is taken."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from harness import serve, worker_app

from model_worker.prompts import PromptBuilder

pytestmark = pytest.mark.asyncio
LIMITS = {"max_prompts": 4, "max_choices": 8, "max_embedding_inputs": 3, "max_input_chars": 100}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"prompt": ["a"] * 5}, "prompt"),
        ("/v1/completions", {"prompt": ["a"] * 3, "n": 3}, "n"),
        ("/v1/completions", {"prompt": "x" * 101}, "prompt"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x" * 101}]},
            "messages",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "min_tokens": 3},
            "min_tokens",
        ),
        ("/v1/embeddings", {"input": ["a"] * 4}, "input"),
    ],
)
async def test_a_request_over_a_bound_is_400_at_the_worker_too(
    tiny_model_path: Path, path: str, body: dict[str, Any], param: str
) -> None:
    async with serve(worker_app(tiny_model_path, **LIMITS)) as worker:
        r = await worker.post(path, json={"model": "tiny", **body})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
        assert (await worker.get("/internal/status")).json()["in_flight"] == 0


async def test_prompts_are_built_off_the_event_loop(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    chat_ids = PromptBuilder.chat_ids

    def spy(self: PromptBuilder, messages: Any) -> list[int]:
        threads.append(threading.current_thread().name)
        return chat_ids(self, messages)

    monkeypatch.setattr(PromptBuilder, "chat_ids", spy)
    async with serve(worker_app(tiny_model_path, **LIMITS)) as worker:
        body = {
            "model": "tiny",
            "messages": [{"role": "user", "content": "x" * 100}],
            "max_tokens": 1,
        }
        r = await worker.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert threads and all(name.startswith("prompts") for name in threads), threads
