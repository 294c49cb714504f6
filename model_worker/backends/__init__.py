"""The backends by name, and starting the one a worker is configured with.

`BACKENDS` is the one list of backends: the worker's settings, its `--backend` flag and
`corral up --backend` take their choices from it (plus `auto`). Each entry builds its backend
from the few settings that backend needs.

`openai` serves no local model: it forwards to an external OpenAI-compatible server.

`auto`: a GGUF is served as it is by llamacpp when llama-cpp-python is installed (the
`[llamacpp]` extra); anything else (and a GGUF without it, converted once) goes to vllm when it
imports and starts, else to hf. Every choice is logged with its reason.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from model_worker.backends.base import Backend, BackendError
from model_worker.model_files import ModelSource

if TYPE_CHECKING:  # the settings read BACKENDS for their choices, so only the checker imports them
    from model_worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

HF_DEFAULT_CAPACITY = 4
_FALLBACK_ERRORS = (ImportError, BackendError, RuntimeError, OSError, ValueError)


def _hf(source: ModelSource, settings: WorkerSettings) -> Backend:
    from model_worker.backends.hf import HFBackend

    return HFBackend(
        source.hf_dir(),
        capacity=settings.capacity or HF_DEFAULT_CAPACITY,
        dtype=settings.dtype,
        max_model_len=settings.max_model_len,
        threads=settings.threads,
    )


def _vllm(source: ModelSource, settings: WorkerSettings) -> Backend:
    from model_worker.backends.vllm import VLLMBackend

    return VLLMBackend(
        source.hf_dir(),
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


def _llamacpp(source: ModelSource, settings: WorkerSettings) -> Backend:
    from model_worker.backends.llamacpp import LlamaCppBackend

    if source.gguf is None:
        raise ValueError(
            f"the llamacpp backend serves GGUF files; {source.origin!r} is a Hugging Face "
            "directory (use --backend hf or vllm, or convert it to GGUF)"
        )
    if settings.lora:
        raise ValueError(
            "--lora adapters are served by the vllm backend; for llamacpp merge the adapter "
            "first (corral model merge-lora) and convert the result to GGUF"
        )
    return LlamaCppBackend(
        source.gguf,
        parallel=settings.parallel,
        max_model_len=settings.max_model_len,
        threads=settings.threads,
    )


def _openai(source: ModelSource | None, settings: WorkerSettings) -> Backend:
    from model_worker.backends.openai import DEFAULT_CAPACITY, OpenAIBackend, api_key_from_env

    upstream = settings.upstream_model or settings.model_name
    if not settings.base_url or not upstream:
        raise ValueError("the openai backend needs --base-url and --upstream-model")
    return OpenAIBackend(
        settings.base_url,
        upstream,
        api_key=api_key_from_env(settings.api_key_env),
        capacity=settings.capacity or DEFAULT_CAPACITY,
        timeout=settings.upstream_timeout,
        max_model_len=settings.max_model_len,
    )


# A builder takes the model found at --model-path; `openai` needs none (None) and ignores it.
BACKENDS: dict[str, Callable[[ModelSource, WorkerSettings], Backend]] = {
    "hf": _hf,
    "vllm": _vllm,
    "llamacpp": _llamacpp,
    "openai": _openai,
}
UPSTREAM = "openai"  # the backend that forwards whole requests instead of generating
AUTO = "auto"
BACKEND_CHOICES = (AUTO, *BACKENDS)
# what `corral up` may start for a local model (an upstream needs a worker of its own)
LOCAL_BACKEND_CHOICES = tuple(b for b in BACKEND_CHOICES if b != UPSTREAM)


def llamacpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


async def start_backend(settings: WorkerSettings, source: ModelSource | None) -> Backend:
    """Build and start the configured backend; `auto` says which it chose and why."""
    if settings.backend == UPSTREAM:
        backend = _openai(source, settings)
        await backend.start()
        return backend
    if source is None:
        raise ValueError(f"the {settings.backend} backend needs a model (--model-path)")
    if settings.backend != AUTO:
        build = BACKENDS[settings.backend]
        backend = await asyncio.to_thread(build, source, settings)  # may convert a GGUF
        await backend.start()
        return backend
    if source.gguf is not None:
        if llamacpp_installed():
            try:
                backend = _llamacpp(source, settings)
                await backend.start()
                logger.info(
                    "backend auto: %s is a GGUF and llama-cpp-python is installed: serving it "
                    "as it is with llamacpp",
                    source.origin,
                )
                return backend
            except _FALLBACK_ERRORS as exc:
                logger.warning("backend auto: llamacpp failed to start (%s); converting", exc)
        else:
            logger.info(
                "backend auto: %s is a GGUF but llama-cpp-python is not installed "
                "(pip install 'corral[llamacpp]'); converting it for vllm or hf",
                source.origin,
            )
    try:
        backend = await asyncio.to_thread(_vllm, source, settings)
        await backend.start()
        logger.info("backend auto: using vllm")
        return backend
    except _FALLBACK_ERRORS as exc:
        logger.warning("backend auto: vllm unavailable (%s); using hf", exc)
    backend = await asyncio.to_thread(_hf, source, settings)
    await backend.start()
    return backend
