"""`corral worker --backend openai` as real processes on loopback, in front of (a) a second Corral
platform's gateway and (b) vLLM's own OpenAI server: registered with a controller, listed,
dispatched, counted, and failed over when the upstream goes away."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from harness import sse_events
from procs import Platform, Service, free_port, start_platform

KEY_VAR = "CORRAL_TEST_UPSTREAM_KEY"
MSGS = [{"role": "user", "content": "Hello there"}]


def start_front(
    logs: Path, upstream: str, upstream_model: str, *, local_model: Path | None = None
) -> Platform:
    """A controller and a gateway whose model "ext" is served by an openai-backend worker in
    front of `upstream` (and, given `local_model`, by a local hf worker too)."""
    front = Platform()
    ctl = Service("front-controller", ["controller", "--port", str(free_port())], logs)
    ctl.url = f"http://127.0.0.1:{ctl.args[-1]}"
    front.controllers.append(ctl.start())
    ctl.wait_until(f"{ctl.url}/health", 60)
    port = free_port()
    ext = Service(
        "front-external",
        [
            "corral.cli",
            "worker",
            "--backend",
            "openai",
            "--base-url",
            f"{upstream}/v1",
            "--upstream-model",
            upstream_model,
            "--model-name",
            "ext",
            "--api-key-env",
            KEY_VAR,
            "--port",
            str(port),
            "--controller-url",
            ctl.url,
        ],
        logs,
        env={KEY_VAR: "sk-never-shown-77"},
    )
    ext.url = f"http://127.0.0.1:{port}"
    front.workers.append(ext.start())
    if local_model is not None:
        port = free_port()
        local = Service(
            "front-local",
            [
                "model_worker",
                *("--model-path", str(local_model), "--model-name", "ext", "--backend", "hf"),
                *("--port", str(port), "--controller-url", ctl.url),
            ],
            logs,
        )
        local.url = f"http://127.0.0.1:{port}"
        front.workers.append(local.start())
    gw = Service(
        "front-gateway",
        ["openai_api", "--port", str(free_port()), "--controller-url", ctl.url],
        logs,
    )
    gw.url = f"http://127.0.0.1:{gw.args[2]}"
    front.gateways.append(gw.start())
    gw.wait_until(f"{gw.url}/health", 60)
    ctl.wait_until(
        f"{ctl.url}/internal/workers", 300, ok=lambda r: len(r.json()) == len(front.workers)
    )
    return front


def check_contract(gateway: str) -> None:
    """The OpenAI contract through the front gateway: shape, stream, usage, errors."""
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0) as client:
        _check_contract(gateway, client)


def _check_contract(gateway: str, client: openai.OpenAI) -> None:
    assert "ext" in [m.id for m in client.models.list().data]
    r = client.chat.completions.create(model="ext", messages=MSGS, max_tokens=5, temperature=0)  # type: ignore[arg-type]
    assert r.model == "ext"
    assert r.usage is not None and r.usage.completion_tokens == 5
    assert r.choices[0].finish_reason == "length"
    chunks = list(
        client.chat.completions.create(
            model="ext",
            messages=MSGS,  # type: ignore[arg-type]
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    # not asked for: no usage chunk, but the gateway counted the tokens all the same
    raw = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "ext", "messages": MSGS, "max_tokens": 3, "stream": True},
        timeout=120,
    )
    events = sse_events(raw.text)
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])
    metrics = httpx.get(f"{gateway}/metrics").text
    assert any(
        line.startswith("corral_api_output_tokens_total{") and 'model="ext"' in line
        for line in metrics.splitlines()
    )
    completion = client.completions.create(model="ext", prompt="one two", max_tokens=3)
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="ext", messages=MSGS, max_tokens=10**7)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert "sk-never-shown" not in str(info.value.body)


@pytest.fixture(scope="module")
def corral_behind_corral(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> Iterator[dict[str, Any]]:
    logs = tmp_path_factory.mktemp("external-corral")
    back = start_platform(logs, tiny_model_path)
    try:
        front = start_front(logs, back.gateway, "tiny", local_model=tiny_model_path)
        try:
            yield {"back": back, "front": front}
        finally:
            front.stop()
    finally:
        back.stop()


def test_a_corral_gateway_as_an_external_model(corral_behind_corral: dict[str, Any]) -> None:
    front: Platform = corral_behind_corral["front"]
    workers = httpx.get(f"{front.controller}/internal/workers").json()
    backends = sorted(w["registration"]["backend"] for w in workers)
    assert backends == ["hf", "openai"]
    check_contract(front.gateway)
    # the upstream's key stays out of every log
    for service in [*front.workers, *front.gateways]:
        assert "sk-never-shown" not in service.log_path.read_text()


def test_upstream_gone_fails_over_to_another_worker(corral_behind_corral: dict[str, Any]) -> None:
    back: Platform = corral_behind_corral["back"]
    front: Platform = corral_behind_corral["front"]
    back.gateways[0].stop()
    workers = httpx.get(f"{front.controller}/internal/workers").json()
    backend = {w["registration"]["worker_id"]: w["registration"]["backend"] for w in workers}
    for _ in range(6):
        r = httpx.post(
            f"{front.gateway}/v1/chat/completions",
            json={"model": "ext", "messages": MSGS, "max_tokens": 2},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        # the external worker answers 503 for its dead upstream, so the gateway went elsewhere
        assert backend[r.headers["x-corral-worker"]] == "hf"
    direct = httpx.post(
        f"{front.workers[0].url}/v1/chat/completions",
        json={"model": "ext", "messages": MSGS, "max_tokens": 2},
        timeout=60,
    )
    assert direct.status_code == 503
    assert direct.json()["error"]["code"] == "upstream_unavailable"


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Iterator[str]:
    pytest.importorskip("vllm")
    logs = tmp_path_factory.mktemp("external-vllm")
    port = free_port()
    server = Service(
        "vllm-openai-server",
        [
            "vllm.entrypoints.openai.api_server",
            *("--model", str(tiny_model_path), "--served-model-name", "tiny-vllm"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--dtype", "float32", "--max-model-len", "512", "--enforce-eager"),
            *("--max-num-seqs", "4"),
        ],
        logs,
        env={"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": str(os.cpu_count() or 1)},
    )
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(f"{url}/v1/models", 900)
        front = start_front(logs, url, "tiny-vllm")
        try:
            yield front.gateway
        finally:
            front.stop()
    finally:
        server.stop(timeout=60)


@pytest.mark.vllm
def test_vllms_own_server_as_an_external_model(vllm_server: str) -> None:
    check_contract(vllm_server)
