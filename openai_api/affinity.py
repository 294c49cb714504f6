"""The routing key for cache-aware dispatch: hashes of a request's leading prefixes.

Chat traffic resends the whole conversation each turn, so turn N's messages start with turn
N-1's. Key i is a running hash over the first i+1 messages (role and content), so two requests
share key i exactly when their first i+1 messages are equal; the controller sends a request
where its longest known key was served before (the engine's prefix cache is warm there).
Nothing is tokenized: one BLAKE2b update per message, on text the gateway already parsed.

A completion's prompt is cut into `BLOCK`-character pieces instead (whole, and at most
`MAX_PREFIX_KEYS` of them). The key reaches `ControllerClient.dispatch` through a context
variable set by the route for the request it handles (the relay in between does not carry it).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Iterable

from protocol.control import MAX_PREFIX_KEYS
from protocol.openai import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

BLOCK = 1024  # characters per prompt piece of a completion

# The prefix keys of the request this task is handling; empty: none (no cache affinity).
current_prefix_keys: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "corral_prefix_keys", default=()
)


def _chain(parts: Iterable[bytes]) -> list[str]:
    h = hashlib.blake2b(digest_size=8)
    keys = []
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))  # no two splits of one text hash alike
        h.update(part)
        keys.append(h.hexdigest())
        if len(keys) == MAX_PREFIX_KEYS:
            break
    return keys


def _message_bytes(message: object) -> bytes:
    data = message.model_dump(exclude_none=True) if hasattr(message, "model_dump") else message
    return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()


def prefix_keys(
    body: ChatCompletionRequest | CompletionRequest | EmbeddingRequest,
) -> tuple[str, ...]:
    """The request's prefix keys, shortest prefix first; none for embeddings."""
    if isinstance(body, ChatCompletionRequest):
        return tuple(_chain(_message_bytes(m) for m in body.messages))
    if isinstance(body, CompletionRequest) and isinstance(body.prompt, str):
        text = body.prompt.encode()
        whole = len(text) // BLOCK
        return tuple(_chain(text[i * BLOCK : (i + 1) * BLOCK] for i in range(whole)))
    return ()
