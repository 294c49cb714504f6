"""`/v1/embeddings` for workers whose backend can embed (mean-pooled, L2-normalised)."""

from __future__ import annotations

import base64
import struct

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from model_worker.backends.base import Backend
from model_worker.limiter import AdmissionQueue
from model_worker.prompts import PromptBuilder
from protocol.errors import InvalidRequest
from protocol.limits import InputLimits, check_embedding
from protocol.openai import EmbeddingData, EmbeddingRequest, EmbeddingResponse, Usage
from servekit.http import until_disconnect


class EmbeddingServing:
    def __init__(
        self,
        backend: Backend,
        prompts: PromptBuilder,
        limiter: AdmissionQueue,
        limits: InputLimits,
    ) -> None:
        self.backend = backend
        self.prompts = prompts
        self.limiter = limiter
        self.limits = limits

    async def __call__(self, req: EmbeddingRequest, request: Request) -> Response:
        if not self.backend.can_embed:
            raise InvalidRequest(
                f"model {req.model!r} does not serve embeddings",
                param="model",
                code="embeddings_not_supported",
            )
        check_embedding(req, self.limits)
        slot = await self.limiter.acquire()
        try:
            prompts = await self.prompts.run(self.prompts.embedding_ids, req)
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
