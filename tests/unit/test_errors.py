"""The error model (protocol/errors.py): classes, statuses and the OpenAI envelope."""

from __future__ import annotations

import pytest

from protocol import errors


@pytest.mark.parametrize(
    ("cls", "status", "etype"),
    [
        (errors.InvalidRequest, 400, "invalid_request_error"),
        (errors.ContextLengthExceeded, 400, "invalid_request_error"),
        (errors.AuthenticationFailed, 401, "authentication_error"),
        (errors.ModelNotFound, 404, "invalid_request_error"),
        (errors.PayloadTooLarge, 413, "invalid_request_error"),
        (errors.UpstreamError, 502, "upstream_error"),
        (errors.NoWorkerAvailable, 503, "service_unavailable"),
        (errors.UpstreamTimeout, 504, "timeout"),
    ],
)
def test_each_class_has_its_status_and_an_envelope(cls: type, status: int, etype: str) -> None:
    err = cls("boom", param="x")
    assert err.status_code == status
    body = err.envelope()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == etype
    assert body["error"]["message"] == "boom"
    assert body["error"]["param"] == "x"


def test_rate_limited_carries_retry_after_in_whole_seconds() -> None:
    err = errors.RateLimited("slow down", retry_after=1.2)
    assert err.status_code == 429
    assert err.headers == {"Retry-After": "2"}
    assert err.envelope()["error"]["code"] == "rate_limit_exceeded"


def test_parse_envelope_keeps_status_message_and_code() -> None:
    sent = errors.ModelNotFound("no such model", param="model")
    got = errors.parse_envelope(sent.to_json_bytes(), 404)
    assert got.status_code == 404
    assert (got.message, got.param, got.code) == ("no such model", "model", "model_not_found")


def test_parse_envelope_of_garbage_still_gives_an_error_of_that_status() -> None:
    got = errors.parse_envelope(b"<html>bad gateway</html>", 503)
    assert got.status_code == 503
    assert "bad gateway" in got.message
