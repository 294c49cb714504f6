"""`corral model apply-delta|merge-lora`: offline tools that write a servable checkpoint.

Exit codes: 0 on success; 2 with `corral model <command>: error: ...` on stderr when the input
cannot be used (a mismatched base, an existing output folder, a missing file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from model_worker.weights.checkpoint import WeightsError

USAGE_ERROR = 2
DTYPES = ("auto", "float16", "bfloat16", "float32")


def add_subparser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "model",
        help="turn delta weights and LoRA adapters into servable checkpoints",
        description="Offline weight tools; each writes a new checkpoint folder atomically.",
    )
    commands = parser.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    delta = commands.add_parser(
        "apply-delta",
        help="target = base + delta (Vicuna v0, StableVicuna, ...), one shard at a time",
    )
    delta.add_argument("--base", type=Path, required=True, help="the base model folder")
    delta.add_argument("--delta", type=Path, required=True, help="the published delta folder")
    delta.add_argument("--out", type=Path, required=True, help="new folder for the result")
    delta.add_argument(
        "--dtype", choices=DTYPES, default="auto", help="stored dtype (auto: the delta's)"
    )
    delta.set_defaults(func=_apply_delta)

    lora = commands.add_parser(
        "merge-lora", help="merge a PEFT LoRA adapter (vocabulary extensions too) into its base"
    )
    lora.add_argument("--base", type=Path, required=True, help="the base model folder")
    lora.add_argument("--lora", type=Path, required=True, help="the PEFT adapter folder")
    lora.add_argument("--out", type=Path, required=True, help="new folder for the result")
    lora.add_argument(
        "--dtype", choices=DTYPES, default="auto", help="load and store dtype (auto: the base's)"
    )
    lora.set_defaults(func=_merge_lora)


def _apply_delta(args: argparse.Namespace) -> int:
    from model_worker.weights.delta import apply_delta

    return _run(
        "apply-delta", lambda: apply_delta(args.base, args.delta, args.out, dtype=args.dtype)
    )


def _merge_lora(args: argparse.Namespace) -> int:
    from model_worker.weights.lora import merge_lora

    return _run("merge-lora", lambda: merge_lora(args.base, args.lora, args.out, dtype=args.dtype))


def _run(command: str, work: Any) -> int:
    try:
        out = work()
    except WeightsError as exc:
        print(f"corral model {command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(f"corral model {command}: wrote {out}")
    return 0
