"""One error model for every service: exception classes, their HTTP status and the OpenAI envelope.

Every error a client can see is `{"error": {"message", "type", "param", "code"}}` with the status
of its class. A failure after a stream started is one SSE event carrying the same envelope,
followed by `data: [DONE]` (see `protocol.stream`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


class CorralError(Exception):
    """Base class: subclasses fix the HTTP status and the OpenAI error type."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.envelope(), ensure_ascii=False).encode()


class InvalidRequest(CorralError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class AuthenticationFailed(CorralError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(CorralError):
    status_code = 403
    error_type = "permission_error"
    default_code = "model_not_allowed"


class ModelNotFound(CorralError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "model_not_found"


class NotFound(CorralError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(CorralError):
    status_code = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class PayloadTooLarge(CorralError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimited(CorralError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, param: str | None = None) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(message, param=param, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds


class InternalError(CorralError):
    status_code = 500
    error_type = "internal_error"


class UpstreamError(CorralError):
    """A worker failed after it accepted the request (connection dropped, malformed reply)."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "worker_failed"


class ServiceUnavailable(CorralError):
    status_code = 503
    error_type = "service_unavailable"
    default_code = "service_unavailable"


class NoWorkerAvailable(ServiceUnavailable):
    default_code = "no_worker_available"


class Overloaded(ServiceUnavailable):
    default_code = "overloaded"


class UpstreamTimeout(CorralError):
    status_code = 504
    error_type = "timeout"
    default_code = "timeout"


_BY_STATUS: dict[int, type[CorralError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    500: InternalError,
    502: UpstreamError,
    503: ServiceUnavailable,
    504: UpstreamTimeout,
}


def error_for_status(status: int, message: str, *, code: str | None = None) -> CorralError:
    """An error of the class that owns `status` (used when relaying a peer's failure)."""
    if status == 429:
        return RateLimited(message, retry_after=1)
    cls = _BY_STATUS.get(status, InternalError if status >= 500 else InvalidRequest)
    return cls(message, code=code)


def parse_envelope(body: bytes | str, status: int) -> CorralError:
    """Rebuild the error a peer service sent, keeping its status, message, param and code."""
    try:
        data = json.loads(body)
        err = data["error"]
        message = str(err["message"])
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return error_for_status(status, f"upstream answered {status}: {text[:200]}")
    rebuilt = error_for_status(status, message, code=err.get("code"))
    rebuilt.param = err.get("param")
    return rebuilt
