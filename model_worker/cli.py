"""`corral worker` / `python -m model_worker` flags."""

from __future__ import annotations

import argparse
import sys

from corral.cliargs import add_logging_flag, configure_logging, overrides
from model_worker.settings import WorkerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--model-path", help="built-in name (smollm2), a .gguf file, or a local HF model dir")
    a("--model-name", help="name clients use (default: derived from the path)")
    a(
        "--backend",
        choices=["auto", "hf", "vllm", "llamacpp"],
        help="auto (default): llamacpp for a .gguf when llama-cpp-python is installed, else "
        "vllm when it starts, else hf",
    )
    a("--conv-template", help="template name (see `corral templates list`)")
    a("--host")
    a("--port", type=int)
    a("--worker-address", help="URL the gateway uses to reach this worker")
    a(
        "--controller-url",
        dest="controller_urls",
        action="append",
        help="controller base URL (repeatable)",
    )
    a("--control-secret", help="shared secret for the controller's control plane")
    a("--capacity", type=int, help="requests served at once")
    a("--max-queued", type=int, help="requests waiting beyond capacity before 503")
    a("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    a(
        "--threads",
        type=int,
        help="hf: torch threads, llamacpp: llama.cpp threads (default: every core); give "
        "workers sharing a host a share each, or their spinning threads starve one another",
    )
    a(
        "--parallel",
        type=int,
        help="llamacpp: requests decoded at once, each in a context of its own over the one "
        "memory-mapped model (default 1)",
    )
    a("--max-model-len", type=int, help="context length (llamacpp default: 4096, per context)")
    a("--tensor-parallel-size", type=int)
    a("--gpu-memory-utilization", type=float)
    a("--quantization", help="vllm: awq, gptq, ...")
    a("--enable-lora", action="store_true", default=None)
    a("--lora", action="append", help="vllm: NAME=PATH of a LoRA adapter (repeatable)")
    a("--max-num-seqs", type=int, help="vllm: sequences batched at once (the capacity)")
    a("--runner", choices=["generate", "pooling"], help="vllm: pooling = embeddings worker")
    a(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="vllm: skip torch.compile (default: yes on a CPU, no on a GPU)",
    )
    add_logging_flag(parser)


def run(args: argparse.Namespace) -> int:
    from corral import server
    from model_worker.app import create_app, leave_controller

    configure_logging(args.log_level)
    # Backends decode in threads that hold the GIL between torch ops; the default 5 ms switch
    # interval then delays the event loop (and every streamed token) by up to 5 ms a turn.
    sys.setswitchinterval(0.0005)
    settings = WorkerSettings(**overrides(args, WorkerSettings))
    app = create_app(settings)
    server.run(
        app,
        settings.host,
        settings.port,
        on_shutdown_begin=lambda: leave_controller(app),
        log_level=args.log_level,
    )
    return 0
