"""What a user reads when the gateway fails: words to act on, never raw gateway text."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from webui.gateway import FAILURES, classify

REQUEST = httpx.Request("POST", "http://gateway/v1/chat/completions")


def status_error(status: int, body: dict[str, Any]) -> openai.APIStatusError:
    response = httpx.Response(status, request=REQUEST)
    return openai.APIStatusError(str(body.get("message")), response=response, body=body)


OVERFLOW = (
    "This model's maximum context length is 8192 tokens. However, you requested 8876 tokens "
    "(8364 in the messages, 512 in the completion)."
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (status_error(400, {"message": OVERFLOW, "code": "context_length_exceeded"}), "too_long"),
        (status_error(400, {"message": OVERFLOW}), "too_long"),
        (status_error(503, {"message": "no live worker for model 'x' right now"}), "unavailable"),
        (status_error(404, {"message": "model 'x' not found"}), "unavailable"),
        (status_error(429, {"message": "too many requests"}), "busy"),
        (status_error(500, {"message": "Traceback ..."}), "broken"),
        (openai.APITimeoutError(REQUEST), "timeout"),
        (openai.APIConnectionError(request=REQUEST), "unavailable"),
        (openai.APIError("stream broke", REQUEST, body=None), "broken"),
        (RuntimeError("boom"), "broken"),
    ],
)
def test_failures_read_as_what_to_do(error: Exception, kind: str) -> None:
    got_kind, message = classify(error)
    assert (got_kind, message) == (kind, FAILURES[got_kind])  # type: ignore[index]
    assert "gateway" not in message and "token" not in message


def test_a_refused_request_says_why() -> None:
    error = status_error(400, {"message": "temperature must be at most 2", "param": "x"})
    assert classify(error) == ("refused", "The request was refused: temperature must be at most 2")
