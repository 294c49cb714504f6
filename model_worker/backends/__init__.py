"""Backend selection: `hf`, `vllm`, or `auto` (vllm when it imports and starts, else hf)."""

from __future__ import annotations

import logging

from model_worker.backends.base import Backend, BackendError
from model_worker.model_files import ModelSource
from model_worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

HF_DEFAULT_CAPACITY = 4


def _hf(settings: WorkerSettings, source: ModelSource) -> Backend:
    from model_worker.backends.hf import HFBackend

    return HFBackend(
        source.path,
        capacity=settings.capacity or HF_DEFAULT_CAPACITY,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        threads=settings.threads,
    )


def _vllm(settings: WorkerSettings, source: ModelSource) -> Backend:
    from model_worker.backends.vllm import VLLMBackend

    return VLLMBackend(source.path, settings)


async def start_backend(settings: WorkerSettings, source: ModelSource) -> Backend:
    """Build and start the configured backend; `auto` falls back to hf and says why."""
    if settings.backend == "hf":
        backend = _hf(settings, source)
    elif settings.backend == "vllm":
        backend = _vllm(settings, source)
    else:
        try:
            backend = _vllm(settings, source)
            await backend.start()
            logger.info("backend auto: using vllm")
            return backend
        except (ImportError, BackendError, RuntimeError, OSError, ValueError) as exc:
            logger.warning("backend auto: vllm unavailable (%s); using hf", exc)
            backend = _hf(settings, source)
    await backend.start()
    return backend
