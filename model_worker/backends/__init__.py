"""The backends by name, and starting the one a worker is configured with.

`BACKENDS` is the one list of backends: the worker's settings, its `--backend` flag and
`corral up --backend` take their choices from it (plus `auto`: vllm when it imports and
starts, else hf). Each entry builds its backend from the few settings that backend needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from model_worker.backends.base import Backend, BackendError
from model_worker.model_files import ModelSource

if TYPE_CHECKING:  # the settings read BACKENDS for their choices, so only the checker imports them
    from model_worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

HF_DEFAULT_CAPACITY = 4


def _hf(source: ModelSource, settings: WorkerSettings) -> Backend:
    from model_worker.backends.hf import HFBackend

    return HFBackend(
        source.path,
        capacity=settings.capacity or HF_DEFAULT_CAPACITY,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        threads=settings.threads,
    )


def _vllm(source: ModelSource, settings: WorkerSettings) -> Backend:
    from model_worker.backends.vllm import VLLMBackend

    return VLLMBackend(
        source.path,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        quantization=settings.quantization,
        enable_lora=settings.enable_lora,
        loras=settings.lora,
        max_num_seqs=settings.max_num_seqs,
        runner=settings.runner,
        enforce_eager=settings.enforce_eager,
    )


BACKENDS: dict[str, Callable[[ModelSource, WorkerSettings], Backend]] = {
    "hf": _hf,
    "vllm": _vllm,
}
AUTO = "auto"
BACKEND_CHOICES = (AUTO, *BACKENDS)


async def start_backend(settings: WorkerSettings, source: ModelSource) -> Backend:
    """Build and start the configured backend; `auto` falls back to hf and says why."""
    if settings.backend != AUTO:
        backend = BACKENDS[settings.backend](source, settings)
    else:
        try:
            backend = _vllm(source, settings)
            await backend.start()
            logger.info("backend auto: using vllm")
            return backend
        except (ImportError, BackendError, RuntimeError, OSError, ValueError) as exc:
            logger.warning("backend auto: vllm unavailable (%s); using hf", exc)
            backend = _hf(source, settings)
    await backend.start()
    return backend
