"""Schemathesis against the gateway's own OpenAPI schema, on real processes: generated
requests (valid and not, fixed seed) never get a 5xx, and every error is an OpenAI envelope.

Half the generated requests name the served model, so valid ones reach a real worker too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from procs import Service, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway_schema(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    logs = tmp_path_factory.mktemp("fuzz-logs")
    cport, wport, gport = free_port(), free_port(), free_port()
    ctl = f"http://127.0.0.1:{cport}"
    services = [
        Service("controller", ["controller", "--port", str(cport)], logs),
        Service(
            "worker",
            [
                "model_worker",
                "--model-path",
                str(tiny_model_path),
                "--model-name",
                "tiny",
                "--backend",
                "hf",
                "--port",
                str(wport),
                "--controller-url",
                ctl,
                "--capacity",
                "4",
            ],
            logs,
        ),
        Service("gateway", ["openai_api", "--port", str(gport), "--controller-url", ctl], logs),
    ]
    try:
        for s in services:
            s.start()
        services[0].wait_until(f"{ctl}/internal/workers", 120, ok=lambda r: len(r.json()) == 1)
        base = f"http://127.0.0.1:{gport}"
        services[2].wait_until(f"{base}/health", 60)
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")
    finally:
        for s in reversed(services):
            s.stop()


def test_no_5xx_and_every_error_is_an_envelope(gateway_schema: Any) -> None:
    operations = [result.ok() for result in gateway_schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
    }
    checked = 0
    seen: set[int] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=100,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            nonlocal checked
            if isinstance(case.body, dict) and "model" in case.body:
                if zlib.crc32(repr(sorted(case.body)).encode()) % 2:  # deterministic half
                    case.body["model"] = "tiny"
            response = case.call(timeout=60)
            checked += 1
            seen.add(response.status_code)
            assert response.status_code < 500, (case.body, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"message", "type", "param", "code"}
                assert isinstance(error["message"], str) and error["message"]

        check()
    assert checked >= 250, checked  # a few hundred generated requests in all
    assert {200, 400, 404} <= seen  # valid requests were served, bad ones refused
