"""The worker app: `create_app(settings)`; the lifespan loads the model and joins the controller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from conv_templates import match_template, resolve_template
from model_worker.backends import start_backend
from model_worker.backends.base import Backend, BackendError
from model_worker.framing import as_client_error
from model_worker.limiter import AdmissionQueue
from model_worker.model_files import ModelSource, resolve_model
from model_worker.observe import WorkerMetrics
from model_worker.prompts import PromptBuilder
from model_worker.registration import ControllerLink
from model_worker.routes import BODY_MODELS, ROUTES
from model_worker.serving_chat import ChatServing
from model_worker.serving_completion import CompletionServing
from model_worker.serving_embedding import EmbeddingServing
from model_worker.settings import WorkerSettings
from protocol.control import Capability, Heartbeat, WorkerRegistration
from servekit.http import document_models, error_response, install_error_handlers
from servekit.metrics import Metrics, install_metrics

logger = logging.getLogger(__name__)


@dataclass
class WorkerState:
    settings: WorkerSettings
    worker_id: str
    model_name: str
    backend: Backend
    template: Any
    template_reason: str
    limiter: AdmissionQueue
    chat: ChatServing
    completion: CompletionServing
    embedding: EmbeddingServing
    link: ControllerLink | None

    def served_models(self) -> list[str]:
        return [self.model_name, *self.backend.adapters()]

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(
            worker_id=self.worker_id,
            in_flight=self.limiter.in_flight,
            queued=self.limiter.queued,
            healthy=self.backend.healthy(),
        )

    def lora_for(self, model: str) -> str | None:
        return model if model != self.model_name else None


def build_state(
    settings: WorkerSettings,
    backend: Backend,
    source: ModelSource,
    client: httpx.AsyncClient,
    metrics: Metrics,
) -> WorkerState:
    model_name = settings.model_name or source.name
    tok = backend.tokenizer
    special = {
        k: str(v) for k, v in (("bos_token", tok.bos_token), ("eos_token", tok.eos_token)) if v
    }
    # The path usually names the model family best; a served name may be anything.
    name = source.origin
    if match_template(name)[1] is None and match_template(model_name)[1] is not None:
        name = model_name
    resolution = resolve_template(
        explicit=settings.conv_template,
        model_name=name,
        chat_template=backend.chat_template,
        special_tokens=special,
    )
    logger.info("template %s (%s) for %s", resolution.template.name, resolution.reason, model_name)
    capacity = settings.capacity or backend.capacity
    limiter = AdmissionQueue(capacity, settings.max_queued)
    meter = WorkerMetrics(metrics, limiter, backend.running)
    prompts = PromptBuilder(tok, resolution.template, backend.max_model_len)
    worker_id = f"{model_name}-{uuid.uuid4().hex[:8]}"
    capabilities: list[Capability] = []
    if backend.can_generate:
        capabilities += ["chat", "completions"]
    if backend.can_embed:
        capabilities.append("embeddings")
    state = WorkerState(
        settings=settings,
        worker_id=worker_id,
        model_name=model_name,
        backend=backend,
        template=resolution.template,
        template_reason=resolution.reason,
        limiter=limiter,
        chat=ChatServing(backend, prompts, limiter, meter),
        completion=CompletionServing(backend, prompts, limiter, meter),
        embedding=EmbeddingServing(backend, prompts, limiter),
        link=None,
    )
    if settings.controller_urls:
        registration = WorkerRegistration(
            worker_id=worker_id,
            url=settings.address(),
            models=state.served_models(),
            capacity=capacity,
            capabilities=capabilities,
            backend=backend.name,
            template=resolution.template.name,
            context_length=backend.max_model_len,
        )
        state.link = ControllerLink(
            client,
            settings.controller_urls,
            registration,
            state.heartbeat,
            settings.heartbeat_interval,
            settings.control_secret,
        )
    return state


def create_app(
    settings: WorkerSettings,
    *,
    backend: Backend | None = None,
    source: ModelSource | None = None,
) -> FastAPI:
    """The worker app. Tests pass a ready `backend` and `source`; else both come from settings."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        src = source if source is not None else await _resolve(settings.model_path)
        engine = backend
        if engine is None:
            engine = await start_backend(settings, src)
        timeout = httpx.Timeout(5.0, connect=2.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            state = build_state(settings, engine, src, client, metrics)
            app.state.worker = state
            beat = asyncio.create_task(state.link.run()) if state.link else None
            try:
                yield
            finally:
                if beat is not None:
                    beat.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await beat
                if state.link is not None:
                    await state.link.leave()
                await engine.close()

    metrics = Metrics("worker")
    app = FastAPI(title="Corral model worker", lifespan=lifespan, routes=ROUTES)
    install_error_handlers(app)
    install_metrics(app, metrics, ROUTES)
    app.add_exception_handler(BackendError, _engine_failed)
    document_models(app, BODY_MODELS)
    return app


async def _engine_failed(request: Request, exc: Exception) -> Response:
    return error_response(as_client_error(exc), request)


async def _resolve(model_path: str) -> ModelSource:
    return await asyncio.to_thread(resolve_model, model_path)


async def leave_controller(app: FastAPI) -> None:
    """Shutdown began: leave the registry before draining, so nothing new is routed here."""
    state: WorkerState | None = getattr(app.state, "worker", None)
    if state is not None and state.link is not None:
        await state.link.leave()
