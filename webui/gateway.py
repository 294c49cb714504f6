"""The UI's only way to a model: the gateway, as an OpenAI client with async streaming.

`stream_sides` sends one request per side at the same time and merges their events as they
come, so neither answer waits for the other; one side failing never stops the other. Setting
its `stop` event closes both streams, which makes the gateway abort them in the engines.
Failures are told in words a user can act on (`describe`); the gateway's own text is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import openai
from openai.types.chat import ChatCompletionMessageParam

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delta:
    side: int
    text: str


@dataclass(frozen=True)
class Finished:
    side: int
    reason: str


FailureKind = Literal["too_long", "unavailable", "busy", "timeout", "broken", "refused"]

# What the user reads for each kind of failure; "refused" adds the gateway's reason.
FAILURES: dict[FailureKind, str] = {
    "too_long": "This conversation is too long for the model: start a new one, or shorten it.",
    "unavailable": "This model is unavailable right now: press Regenerate in a few seconds.",
    "busy": "This model is busy right now: press Regenerate in a few seconds.",
    "timeout": "The model took too long to answer: press Regenerate to try again.",
    "broken": "The answer broke off because the model's server failed: press Regenerate.",
    "refused": "The request was refused",
}


@dataclass(frozen=True)
class Failed:
    side: int
    message: str
    kind: FailureKind = "broken"


Event = Delta | Finished | Failed


def classify(exc: Exception) -> tuple[FailureKind, str]:
    """What kind of failure `exc` is, and the message the user reads."""
    kind: FailureKind = "broken"
    if isinstance(exc, openai.APITimeoutError):
        kind = "timeout"
    elif isinstance(exc, openai.APIConnectionError):
        kind = "unavailable"
    elif isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = str(body.get("code") or "")
        detail = str(body.get("message") or exc.message)
        if code == "context_length_exceeded" or "maximum context length" in detail:
            kind = "too_long"
        elif exc.status_code == 429:
            kind = "busy"
        elif exc.status_code in (404, 502, 503, 504):
            kind = "unavailable"
        elif 400 <= exc.status_code < 500:
            return "refused", f"{FAILURES['refused']}: {detail}"
    return kind, FAILURES[kind]


def describe(exc: Exception) -> str:
    """A short message for the user: what happened and what to do about it."""
    return classify(exc)[1]


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_length: int | None  # tokens, prompt and answer together; None: not told


class Gateway:
    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    @classmethod
    def connect(cls, base_url: str, api_key: str | None, timeout: float) -> Gateway:
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=openai.Timeout(timeout, connect=5.0),
            max_retries=0,
        )
        return cls(client)

    async def models(self) -> list[str]:
        """The ids /v1/models lists, sorted; raises openai.OpenAIError."""
        return [m.id for m in await self.model_infos()]

    async def model_infos(self) -> list[ModelInfo]:
        """What /v1/models lists, sorted by id: with each model's context length when the
        gateway says it (`max_model_len`, as vLLM spells it); raises openai.OpenAIError."""
        page = await self._client.models.list()
        infos = []
        for m in page.data:
            length = (m.model_extra or {}).get("max_model_len")
            infos.append(ModelInfo(m.id, length if isinstance(length, int) else None))
        return sorted(infos, key=lambda m: m.id)

    async def stream(
        self, side: int, model: str, messages: list[dict[str, str]], sampling: Sampling
    ) -> AsyncGenerator[Event, None]:
        """One answer as events, always ending with exactly one Finished or Failed."""
        reason: str | None = None
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                stream=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield Delta(side, choice.delta.content)
                        if choice.finish_reason:
                            reason = choice.finish_reason
        except Exception as exc:  # a side must end with an event whatever happened
            if isinstance(exc, openai.OpenAIError):
                logger.info("side %d (%s) failed: %s", side, model, exc)
            else:
                logger.exception("side %d (%s) failed unexpectedly", side, model)
            kind, message = classify(exc)
            yield Failed(side, message, kind)
            return
        if reason is None:
            yield Failed(side, FAILURES["broken"], "broken")
        else:
            yield Finished(side, reason)

    async def stream_sides(
        self,
        requests: Sequence[tuple[str, list[dict[str, str]], Sampling]],
        stop: asyncio.Event | None = None,
        tick: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        """Every side's answer at once; yields the events that arrived since the last yield,
        and an empty batch after `tick` seconds without any. Ends early once `stop` is set:
        the sides still open then get no final event, and their streams are closed."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        stop = stop or asyncio.Event()

        async def pump(side: int, model: str, messages: list[dict[str, str]], s: Sampling) -> None:
            async with contextlib.aclosing(self.stream(side, model, messages, s)) as events:
                async for event in events:
                    queue.put_nowait(event)

        tasks = [
            asyncio.create_task(pump(i, model, messages, s))
            for i, (model, messages, s) in enumerate(requests)
        ]
        stopped = asyncio.create_task(stop.wait())
        open_sides = len(tasks)
        try:
            while open_sides and not stop.is_set():
                got = asyncio.create_task(queue.get())
                await asyncio.wait({got, stopped}, timeout=tick, return_when="FIRST_COMPLETED")
                if not got.done():
                    got.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await got
                    if not stop.is_set():
                        yield []
                    continue
                batch = [got.result()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                open_sides -= sum(1 for e in batch if not isinstance(e, Delta))
                yield batch
        finally:
            stopped.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def close(self) -> None:
        await self._client.close()
