"""Pieces shared by the OpenAI endpoints of a worker: guarded streams, error mapping, logprobs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.responses import StreamingResponse

from model_worker.backends.base import BackendError, TokenLogprob
from model_worker.limiter import Slot
from protocol.errors import CorralError, InternalError, ServiceUnavailable
from protocol.openai import ChatLogprobs, TokenLogprobEntry, TopLogprob
from protocol.stream import DONE, error_event

logger = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def as_client_error(exc: BaseException) -> CorralError:
    """What the client is told when generation fails: our own errors as they are, else 500/503."""
    if isinstance(exc, CorralError):
        return exc
    if isinstance(exc, BackendError):
        return ServiceUnavailable(f"the model engine failed: {exc}", code="engine_failed")
    logger.exception("generation failed", exc_info=exc)
    return InternalError("generation failed; see the worker log")


async def guarded_stream(events: AsyncIterator[bytes], slot: Slot) -> AsyncIterator[bytes]:
    """Relay SSE events; a failure becomes one error event, and `[DONE]` always ends the stream.

    The admission slot is released however the stream ends; a client disconnect cancels this
    generator, which closes `events` and so aborts the request in the engine.
    """
    try:
        async for chunk in events:
            yield chunk
    except Exception as exc:
        yield error_event(as_client_error(exc))
    finally:
        slot.release()
        await _aclose(events)
    yield DONE


class SlotStreamingResponse(StreamingResponse):
    """A stream that frees its admission slot even if the client left before it started.

    Every send has `write_idle_timeout` seconds: a client that stops reading (its socket
    buffers full) loses the stream, which aborts the generation and frees the slot.
    """

    def __init__(
        self, content: AsyncIterator[bytes], slot: Slot, write_idle_timeout: float = 30.0
    ) -> None:
        super().__init__(
            guarded_stream(content, slot), media_type="text/event-stream", headers=SSE_HEADERS
        )
        self.slot = slot
        self.write_idle_timeout = write_idle_timeout

    async def stream_response(self, send: Any) -> None:
        idle = self.write_idle_timeout

        async def timed_send(message: Any) -> None:
            with anyio.fail_after(idle):
                await send(message)

        try:
            await super().stream_response(timed_send)
        except TimeoutError:
            logger.warning("client stopped reading for %.0f s; stream dropped", idle)
        finally:
            self.slot.release()
            await _aclose(self.body_iterator)  # type: ignore[arg-type]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


async def _aclose(it: AsyncIterator[bytes]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


def token_text(tokenizer: Any, token_id: int) -> str:
    return str(tokenizer.decode([token_id]))


def _top(tokenizer: Any, token_id: int, logprob: float) -> TopLogprob:
    text = token_text(tokenizer, token_id)
    return TopLogprob(token=text, logprob=logprob, bytes=list(text.encode()))


def to_chat_logprobs(tokenizer: Any, items: list[TokenLogprob]) -> ChatLogprobs:
    """OpenAI chat `logprobs` for the given tokens."""
    entries = []
    for item in items:
        top = _top(tokenizer, item.token_id, item.logprob)
        entries.append(
            TokenLogprobEntry(
                **top.model_dump(),
                top_logprobs=[_top(tokenizer, tid, lp) for tid, lp in item.top],
            )
        )
    return ChatLogprobs(content=entries)
