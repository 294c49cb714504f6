"""The UI's only way to a model: the gateway, as an OpenAI client with async streaming.

`stream_sides` sends one request per side at the same time and merges their events as they
come, so neither answer waits for the other; one side failing never stops the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

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


@dataclass(frozen=True)
class Failed:
    side: int
    message: str


Event = Delta | Finished | Failed


def describe(exc: Exception) -> str:
    """A short message for the user; the gateway's own words when it sent some."""
    if isinstance(exc, openai.APITimeoutError):
        return "the model did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        return "cannot reach the API gateway"
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or exc.message
        return f"the gateway answered {exc.status_code}: {detail}"
    if isinstance(exc, openai.APIError):
        return f"the answer failed: {exc.message}"
    return f"the answer failed: {exc}"


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
        page = await self._client.models.list()
        return sorted(m.id for m in page.data)

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
        except openai.OpenAIError as exc:
            logger.info("side %d (%s) failed: %s", side, model, exc)
            yield Failed(side, describe(exc))
            return
        except Exception as exc:  # a side must end with an event whatever happened
            logger.exception("side %d (%s) failed unexpectedly", side, model)
            yield Failed(side, describe(exc))
            return
        if reason is None:
            yield Failed(side, "the answer ended before it was complete")
        else:
            yield Finished(side, reason)

    async def stream_sides(
        self, requests: Sequence[tuple[str, list[dict[str, str]]]], sampling: Sampling
    ) -> AsyncGenerator[list[Event], None]:
        """Every side's answer at once; yields the events that arrived since the last yield."""
        queue: asyncio.Queue[Event] = asyncio.Queue()

        async def pump(side: int, model: str, messages: list[dict[str, str]]) -> None:
            async with contextlib.aclosing(self.stream(side, model, messages, sampling)) as events:
                async for event in events:
                    queue.put_nowait(event)

        tasks = [
            asyncio.create_task(pump(i, model, messages))
            for i, (model, messages) in enumerate(requests)
        ]
        open_sides = len(tasks)
        try:
            while open_sides:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                open_sides -= sum(1 for e in batch if not isinstance(e, Delta))
                yield batch
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def close(self) -> None:
        await self._client.close()
