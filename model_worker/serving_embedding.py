"""`/v1/embeddings` for workers whose backend can embed (mean-pooled, L2-normalised)."""

from __future__ import annotations

import base64
import struct

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from model_worker.backends.base import Backend
from model_worker.limiter import AdmissionQueue
from model_worker.prompts import PromptBuilder
from protocol.errors import ContextLengthExceeded, InvalidRequest
from protocol.openai import EmbeddingData, EmbeddingRequest, EmbeddingResponse, Usage
from servekit.http import until_disconnect


class EmbeddingServing:
    def __init__(self, backend: Backend, prompts: PromptBuilder, limiter: AdmissionQueue) -> None:
        self.backend = backend
        self.prompts = prompts
        self.limiter = limiter

    async def __call__(self, req: EmbeddingRequest, request: Request) -> Response:
        if not self.backend.can_embed:
            raise InvalidRequest(
                f"model {req.model!r} does not serve embeddings",
                param="model",
                code="embeddings_not_supported",
            )
        prompts: list[list[int]] = []
        vocab = len(self.prompts.tokenizer)
        for item in req.inputs():
            if isinstance(item, str):
                ids = self.prompts.tokenizer(item, add_special_tokens=True)["input_ids"]
            else:
                if any(not 0 <= t < vocab for t in item):
                    raise InvalidRequest(f"token ids must be in [0, {vocab})", param="input")
                ids = list(item)
            if not ids:
                raise InvalidRequest("input is empty after tokenization", param="input")
            if len(ids) > self.prompts.max_model_len:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {self.prompts.max_model_len} "
                    f"tokens, however you requested {len(ids)} tokens in the input.",
                    param="input",
                )
            prompts.append(ids)
        slot = await self.limiter.acquire()
        try:
            vectors = await until_disconnect(request, self.backend.embed(prompts))
        finally:
            slot.release()
        data = [
            EmbeddingData(index=i, embedding=_encode(v, req.encoding_format))
            for i, v in enumerate(vectors)
        ]
        tokens = sum(len(p) for p in prompts)
        body = EmbeddingResponse(
            data=data, model=req.model, usage=Usage(prompt_tokens=tokens, total_tokens=tokens)
        )
        return JSONResponse(body.model_dump())


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
