"""The worker's state: one model behind one backend, its template, its admission queue, the
three OpenAI endpoints, and its link to the controller.

`open_state` builds it for the app's lifespan: it finds the model, starts the backend, resolves
the template once, and starts the heartbeat when a controller is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

import httpx

from conv_templates import Resolution, Template, resolve_template
from model_worker.backends import start_backend
from model_worker.backends.base import Backend
from model_worker.limiter import AdmissionQueue
from model_worker.model_files import ModelSource, resolve_model
from model_worker.observe import WorkerMetrics
from model_worker.prompts import PromptBuilder
from model_worker.registration import ControllerLink
from model_worker.serving_chat import ChatServing
from model_worker.serving_completion import CompletionServing
from model_worker.serving_embedding import EmbeddingServing
from model_worker.settings import WorkerSettings
from protocol.control import Endpoint, Heartbeat, WorkerRegistration
from servekit.metrics import Metrics

logger = logging.getLogger(__name__)

CONTROL_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


@dataclass
class WorkerState:
    settings: WorkerSettings
    worker_id: str
    model_name: str
    backend: Backend
    template: Template
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


async def open_state(
    settings: WorkerSettings,
    stack: contextlib.AsyncExitStack,
    metrics: Metrics,
    *,
    backend: Backend | None = None,
    source: ModelSource | None = None,
) -> WorkerState:
    """The worker's state; what it starts is stopped with `stack` (not a `backend` given)."""
    if source is None:
        source = await asyncio.to_thread(resolve_model, settings.model_path)
    if backend is None:
        backend = await start_backend(settings, source)
        stack.push_async_callback(backend.close)
    client = await stack.enter_async_context(httpx.AsyncClient(timeout=CONTROL_TIMEOUT))
    state = build_state(settings, backend, source, client, metrics)
    stack.callback(state.chat.prompts.close)
    if state.link is not None:
        stack.push_async_callback(state.link.close)
        stack.push_async_callback(_cancel, state.link.start())
    return state


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def build_state(
    settings: WorkerSettings,
    backend: Backend,
    source: ModelSource,
    client: httpx.AsyncClient,
    metrics: Metrics,
) -> WorkerState:
    model_name = settings.model_name or source.name
    resolution = _template(settings, backend, source, model_name)
    limiter = AdmissionQueue(settings.capacity or backend.capacity, settings.max_queued)
    meter = WorkerMetrics(metrics, limiter, backend.running)
    prompts = PromptBuilder(backend.tokenizer, resolution.template, backend.max_model_len)
    limits = settings.input_limits()
    idle = settings.write_idle_timeout
    state = WorkerState(
        settings=settings,
        worker_id=f"{model_name}-{uuid.uuid4().hex[:8]}",
        model_name=model_name,
        backend=backend,
        template=resolution.template,
        template_reason=resolution.reason,
        limiter=limiter,
        chat=ChatServing(backend, prompts, limiter, meter, limits, idle),
        completion=CompletionServing(backend, prompts, limiter, meter, limits, idle),
        embedding=EmbeddingServing(backend, prompts, limiter, limits),
        link=None,
    )
    if settings.controller_urls:
        state.link = ControllerLink(
            client,
            settings.controller_urls,
            _registration(state),
            state.heartbeat,
            settings.heartbeat_interval,
            settings.control_secret,
        )
    return state


def _template(
    settings: WorkerSettings, backend: Backend, source: ModelSource, model_name: str
) -> Resolution:
    tok = backend.tokenizer
    special = {
        k: str(v) for k, v in (("bos_token", tok.bos_token), ("eos_token", tok.eos_token)) if v
    }
    resolution = resolve_template(
        explicit=settings.conv_template,
        names=[source.origin, model_name],
        chat_template=backend.chat_template,
        special_tokens=special,
    )
    logger.info("template %s (%s) for %s", resolution.template.name, resolution.reason, model_name)
    return resolution


def _registration(state: WorkerState) -> WorkerRegistration:
    """What the controller is told about this worker."""
    backend = state.backend
    capabilities: list[Endpoint] = []
    if backend.can_generate:
        capabilities += ["chat", "completions"]
    if backend.can_embed:
        capabilities.append("embeddings")
    return WorkerRegistration(
        worker_id=state.worker_id,
        url=state.settings.address(),
        models=state.served_models(),
        capacity=state.limiter.capacity,
        capabilities=capabilities,
        backend=backend.name,
        template=state.template.name,
        context_length=backend.max_model_len,
    )
