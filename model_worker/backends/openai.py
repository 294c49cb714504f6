"""An external OpenAI-compatible server as a backend: a `vllm serve`, llama.cpp's server, another
Corral gateway, a hosted API.

The worker in front of it registers, heartbeats and admits requests like any other; the
requests themselves go to the upstream as they are (see `model_worker.serving_upstream`), so
this backend owns only the connection: base URL, model name, key and timeouts. It has no
tokenizer and no template: the upstream applies its own.

The key comes from an environment variable named by `--api-key-env`, never from a flag; it
travels in the `Authorization` header and nowhere else, and `redact` takes it out of anything
the upstream sends back before a client or a log sees it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import httpx

from model_worker.backends.base import BackendError, Delta, GenerationRequest

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 16
REDACTED = "[redacted]"


def api_key_from_env(var: str | None) -> str | None:
    """The key held by `var`; a variable that is named but unset is a configuration error."""
    if not var:
        return None
    key = os.environ.get(var)
    if not key:
        raise ValueError(f"--api-key-env names {var}, but that environment variable is not set")
    return key


class OpenAIBackend:
    name = "openai"
    tokenizer: Any = None
    chat_template: str | None = None
    can_generate = True
    can_embed = False

    def __init__(
        self,
        base_url: str,
        upstream_model: str,
        *,
        api_key: str | None,
        capacity: int,
        timeout: float,
        max_model_len: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.upstream_model = upstream_model
        self.capacity = capacity
        self.max_model_len = max_model_len or 0  # 0: unknown until the upstream says
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._healthy = False

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend({self.base_url!r}, {self.upstream_model!r})"

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise BackendError("the upstream connection is not open")
        return self._client

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=self.capacity + 4),
            transport=self._transport,
        )
        try:
            r = await self._client.get("/models")
        except httpx.HTTPError as exc:
            await self.close()
            raise BackendError(
                f"the upstream {self.base_url} is not reachable ({type(exc).__name__})"
            ) from None
        if r.status_code != 200:
            await self.close()
            raise BackendError(
                f"the upstream {self.base_url} answered {r.status_code} to GET /models"
                + (" (check --api-key-env)" if r.status_code in (401, 403) else "")
            )
        cards = _cards(r)
        card = cards.get(self.upstream_model)
        if cards and card is None:
            await self.close()
            raise BackendError(
                f"the upstream {self.base_url} does not serve {self.upstream_model!r} "
                f"(it serves: {', '.join(sorted(cards))}); check --upstream-model"
            )
        length = (card or {}).get("max_model_len")
        if not self.max_model_len and isinstance(length, int) and length > 0:
            self.max_model_len = length
        self._healthy = True
        logger.info("upstream %s serves %s", self.base_url, self.upstream_model)

    async def close(self) -> None:
        self._healthy = False
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def healthy(self) -> bool:
        return self._healthy

    def running(self) -> int:
        return 0  # the upstream's own; the worker's admission queue counts what it sent

    def redact(self, text: str) -> str:
        """`text` without the key (an upstream may quote it back in an error)."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, REDACTED)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        if self._api_key and self._api_key.encode() in data:
            return data.replace(self._api_key.encode(), REDACTED.encode())
        return data

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        """Not used: requests go to the upstream whole, through the upstream serving."""
        raise BackendError("the openai backend forwards whole requests; it has no token loop")
        yield []  # pragma: no cover (makes this an async generator, as the protocol says)

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]:
        raise BackendError("the openai backend does not embed token ids")

    def adapters(self) -> list[str]:
        return []


def _cards(r: httpx.Response) -> dict[str, dict[str, Any]]:
    """The upstream's model cards by id; empty when it sends something else."""
    try:
        data = r.json().get("data")
        return {str(c["id"]): c for c in data if isinstance(c, dict) and "id" in c}
    except (ValueError, AttributeError, TypeError, KeyError):
        return {}
