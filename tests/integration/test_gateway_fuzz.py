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
from procs import start_platform

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway_schema(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    platform = start_platform(
        tmp_path_factory.mktemp("fuzz-logs"), tiny_model_path, worker_args=["--capacity", "4"]
    )
    try:
        yield schemathesis.openapi.from_url(f"{platform.gateway}/openapi.json")
    finally:
        platform.stop()


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
