"""`/v1/completions` for one worker: raw prompts (text or token ids), n choices per prompt."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from model_worker.backends.base import Backend, FinishReason, GenerationRequest, TokenLogprob
from model_worker.framing import SlotStreamingResponse, token_text
from model_worker.limiter import AdmissionQueue
from model_worker.observe import WorkerMetrics
from model_worker.prompts import PromptBuilder
from protocol.errors import InvalidRequest
from protocol.limits import InputLimits, check_completion
from protocol.openai import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    Usage,
)
from protocol.stream import CompletionChunk, encode, usage
from servekit.http import until_disconnect


class CompletionServing:
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

    def prepare(self, req: CompletionRequest, lora: str | None) -> list[GenerationRequest]:
        if req.echo and req.logprobs is not None:
            raise InvalidRequest("echo together with logprobs is not supported", param="echo")
        base = f"cmpl-{uuid.uuid4().hex}"
        gens = []
        for i, ids in enumerate(self.prompts.completion_ids(req)):
            max_tokens = self.prompts.max_tokens(len(ids), req.max_tokens, "prompt")
            opts = self.prompts.options(req, max_tokens, req.logprobs, chat=False)
            gens.append(GenerationRequest(f"{base}-{i}", ids, opts, lora))
        return gens

    async def __call__(
        self, req: CompletionRequest, request: Request, lora: str | None
    ) -> Response:
        check_completion(req, self.limits)
        slot = await self.limiter.acquire()
        try:  # templating and tokenizing: after admission, off the event loop
            gens = await self.prompts.run(self.prepare, req, lora)
        except BaseException:
            slot.release()
            raise
        if req.stream:
            return SlotStreamingResponse(self._events(req, gens), slot, self.write_idle_timeout)
        try:
            body = await until_disconnect(request, self._collect(req, gens))
        finally:
            slot.release()
        return JSONResponse(body.model_dump(exclude_none=False))

    async def _choices(
        self, req: CompletionRequest, gens: list[GenerationRequest]
    ) -> AsyncIterator[tuple[int, str, list[int], list[TokenLogprob] | None, FinishReason | None]]:
        """(choice index, text, token ids, logprobs, finish reason) over every prompt in turn."""
        n = req.n
        for p, gen in enumerate(gens):
            if req.echo:
                prompt_text = self.prompts.tokenizer.decode(gen.prompt_token_ids)
                for i in range(n):
                    yield p * n + i, prompt_text, [], None, None
            stream = self.meter.metered(self.backend.generate(gen), req.model)
            try:
                async for deltas in stream:
                    for d in deltas:
                        yield p * n + d.index, d.text, d.token_ids, d.logprobs, d.finish_reason
            finally:
                await stream.aclose()

    async def _events(
        self, req: CompletionRequest, gens: list[GenerationRequest]
    ) -> AsyncIterator[bytes]:
        request_id = gens[0].request_id.rsplit("-", 1)[0]
        created = int(time.time())

        def chunk(choices: list[CompletionChoice], totals: Usage | None = None) -> bytes:
            return encode(
                CompletionChunk(
                    id=request_id, created=created, model=req.model, choices=choices, usage=totals
                )
            )

        offsets: dict[int, int] = {}
        completion_tokens = 0
        async for index, text, ids, logprobs, finish in self._choices(req, gens):
            completion_tokens += len(ids)
            if not text and finish is None and logprobs is None:
                continue
            lp = None
            if req.logprobs is not None:
                lp = self._logprobs(logprobs or [], offsets.get(index, 0))
            offsets[index] = offsets.get(index, 0) + len(text)
            yield chunk(
                [CompletionChoice(index=index, text=text, logprobs=lp, finish_reason=finish)]
            )
        if req.include_usage():
            yield chunk([], usage(sum(len(g.prompt_token_ids) for g in gens), completion_tokens))

    async def _collect(
        self, req: CompletionRequest, gens: list[GenerationRequest]
    ) -> CompletionResponse:
        total = len(gens) * req.n
        texts: list[list[str]] = [[] for _ in range(total)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(total)]
        finish: list[Any] = [None] * total
        completion_tokens = 0
        async for index, text, ids, lps, reason in self._choices(req, gens):
            texts[index].append(text)
            completion_tokens += len(ids)
            logprobs[index].extend(lps or [])
            finish[index] = reason or finish[index]
        choices = [
            CompletionChoice(
                index=i,
                text="".join(texts[i]),
                logprobs=self._logprobs(logprobs[i], 0) if req.logprobs is not None else None,
                finish_reason=finish[i],
            )
            for i in range(total)
        ]
        return CompletionResponse(
            id=gens[0].request_id.rsplit("-", 1)[0],
            model=req.model,
            choices=choices,
            usage=usage(sum(len(g.prompt_token_ids) for g in gens), completion_tokens),
        )

    def _logprobs(self, items: list[TokenLogprob], start: int) -> CompletionLogprobs:
        tok = self.prompts.tokenizer
        out = CompletionLogprobs()
        offset = start
        for item in items:
            text = token_text(tok, item.token_id)
            out.tokens.append(text)
            out.token_logprobs.append(item.logprob)
            out.top_logprobs.append({token_text(tok, t): lp for t, lp in item.top} or None)
            out.text_offset.append(offset)
            offset += len(text)
        return out
