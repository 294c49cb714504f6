"""`/v1/chat/completions` for one worker: template -> backend -> OpenAI framing."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from model_worker.backends.base import Backend, GenerationRequest, TokenLogprob
from model_worker.framing import SlotStreamingResponse, to_chat_logprobs
from model_worker.limiter import AdmissionQueue
from model_worker.observe import WorkerMetrics
from model_worker.prompts import PromptBuilder, chat_logprobs
from model_worker.structured import from_response_format
from protocol.limits import InputLimits, check_chat
from protocol.openai import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    Usage,
)
from protocol.stream import ChatChunkChoice, ChatCompletionChunk, DeltaMessage, encode, usage
from servekit.http import until_disconnect


class ChatServing:
    def __init__(
        self,
        backend: Backend,
        prompts: PromptBuilder,
        limiter: AdmissionQueue,
        meter: WorkerMetrics,
        limits: InputLimits,
        write_idle_timeout: float = 30.0,
    ) -> None:
        self.backend = backend
        self.prompts = prompts
        self.limiter = limiter
        self.meter = meter
        self.limits = limits
        self.write_idle_timeout = write_idle_timeout

    def prepare(self, req: ChatCompletionRequest, lora: str | None) -> GenerationRequest:
        ids = self.prompts.chat_ids(req.messages)
        max_tokens = self.prompts.max_tokens(len(ids), req.requested_max_tokens(), "messages")
        constraint = from_response_format(req.response_format)
        opts = self.prompts.options(
            req, max_tokens, chat_logprobs(req), chat=True, constraint=constraint
        )
        return GenerationRequest(f"chatcmpl-{uuid.uuid4().hex}", ids, opts, lora)

    async def __call__(
        self, req: ChatCompletionRequest, request: Request, lora: str | None
    ) -> Response:
        check_chat(req, self.limits)
        slot = await self.limiter.acquire()
        try:  # templating and tokenizing: after admission, off the event loop
            gen = await self.prompts.run(self.prepare, req, lora)
        except BaseException:
            slot.release()
            raise
        if req.stream:
            return SlotStreamingResponse(self._events(req, gen), slot, self.write_idle_timeout)
        try:
            body = await until_disconnect(request, self._collect(req, gen))
        finally:
            slot.release()
        return JSONResponse(body.model_dump())

    async def _events(
        self, req: ChatCompletionRequest, gen: GenerationRequest
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def chunk(choices: list[ChatChunkChoice], totals: Usage | None = None) -> bytes:
            return encode(
                ChatCompletionChunk(
                    id=gen.request_id,
                    created=created,
                    model=req.model,
                    choices=choices,
                    usage=totals,
                )
            )

        want_logprobs = gen.options.logprobs is not None
        for index in range(gen.options.n):
            opening = DeltaMessage(role="assistant", content="")
            yield chunk([ChatChunkChoice(index=index, delta=opening)])
        completion_tokens = 0
        stream = self.meter.metered(self.backend.generate(gen), req.model)
        try:
            async for deltas in stream:
                for d in deltas:
                    completion_tokens += len(d.token_ids)
                    if not d.text and d.finish_reason is None and not want_logprobs:
                        continue
                    content = d.text if d.text or d.finish_reason is None else None
                    choice = ChatChunkChoice(
                        index=d.index,
                        delta=DeltaMessage(content=content),
                        logprobs=self._logprobs(d.logprobs) if want_logprobs else None,
                        finish_reason=d.finish_reason,
                    )
                    yield chunk([choice])
        finally:
            await stream.aclose()
        if req.include_usage():
            yield chunk([], usage(len(gen.prompt_token_ids), completion_tokens))

    def _logprobs(self, items: list[TokenLogprob] | None) -> ChatLogprobs:
        return to_chat_logprobs(self.prompts.tokenizer, items or [])

    async def _collect(
        self, req: ChatCompletionRequest, gen: GenerationRequest
    ) -> ChatCompletionResponse:
        n = gen.options.n
        texts: list[list[str]] = [[] for _ in range(n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        finish: list[Any] = [None] * n
        completion_tokens = 0
        stream = self.meter.metered(self.backend.generate(gen), req.model)
        try:
            async for deltas in stream:
                for d in deltas:
                    texts[d.index].append(d.text)
                    completion_tokens += len(d.token_ids)
                    if d.logprobs:
                        logprobs[d.index].extend(d.logprobs)
                    if d.finish_reason:
                        finish[d.index] = d.finish_reason
        finally:
            await stream.aclose()
        want_logprobs = gen.options.logprobs is not None
        choices = [
            ChatChoice(
                index=i,
                message=AssistantMessage(content="".join(texts[i])),
                logprobs=self._logprobs(logprobs[i]) if want_logprobs else None,
                finish_reason=finish[i],
            )
            for i in range(n)
        ]
        return ChatCompletionResponse(
            id=gen.request_id,
            model=req.model,
            choices=choices,
            usage=usage(len(gen.prompt_token_ids), completion_tokens),
        )
