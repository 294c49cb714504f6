"""The cost of constrained decoding: tokens/s with and without `json_schema`, in one run.

A Corral worker (called directly; hf backend by default) serves SmolLM2; the same prompt is
streamed free and under a JSON schema, at concurrency 1 and 8. Reports output tokens/s of each
and the ratio constrained / free at each concurrency. Constrained replies are checked: every one
must parse and validate.

    .venv/bin/python bench/structured_output.py [--backend hf|vllm|llamacpp] [--requests 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from common import Service, free_port, run_streams

from model_worker.model_files import resolve_model

PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]
SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "characters": {
            "type": "array",
            "items": {"type": "string", "maxLength": 20},
            "maxItems": 4,
        },
        "story": {"type": "string", "maxLength": 600},
        "happy_ending": {"type": "boolean"},
    },
    "required": ["title", "characters", "story", "happy_ending"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "story", "schema": SCHEMA, "strict": True}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm", "llamacpp"])
    p.add_argument("--requests", type=int, default=16, help="streams per measurement at c=8")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--out", type=Path, default=Path("bench/results/structured_output.json"))
    args = p.parse_args()
    source = resolve_model(args.model)
    model = source.gguf if args.backend == "llamacpp" else source.hf_dir()
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    port = free_port()
    extra = ["--capacity", "8"] if args.backend == "hf" else []
    if args.backend == "llamacpp":
        extra = ["--parallel", "8"]
    worker = Service(
        "worker",
        ["model_worker", "--model-path", str(model), "--model-name", source.name,
         "--backend", args.backend, "--port", str(port), "--log-level", "warning", *extra],
        tmp,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    free = {"model": source.name, "messages": PROMPT, "max_tokens": args.max_tokens}
    free["min_tokens"] = args.max_tokens
    constrained = {**free, "response_format": FORMAT, "min_tokens": 0}
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "backend": args.backend,
        "model": str(model),
    }
    try:
        worker.start()
        worker.wait_until(f"{base}/v1/models", 900, ok=lambda r: bool(r.json()["data"]))
        report.update(asyncio.run(_measure(base, free, constrained, args.requests)))
    finally:
        worker.stop(timeout=60)
    for conc in ("1", "8"):
        ratio = report["json_schema"][conc]["tokens_per_s"] / report["free"][conc]["tokens_per_s"]
        report[f"ratio_c{conc}"] = ratio
        print(f"concurrency {conc}: json_schema gives {ratio:.3f}x the tokens/s of free text")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


async def _measure(
    base: str, free: dict[str, Any], constrained: dict[str, Any], requests: int
) -> dict[str, Any]:
    url = f"{base}/v1/chat/completions"
    out: dict[str, Any] = {"free": {}, "json_schema": {}}
    async with httpx.AsyncClient(timeout=900) as client:
        await run_streams(client, url, free, 2, 2)  # warm up
        await run_streams(client, url, constrained, 2, 2)  # and compile the grammar once
        for conc in (1, 8):
            total = requests if conc == 8 else max(2, requests // 4)
            for name, body in (("free", free), ("json_schema", constrained)):
                results, wall = await run_streams(client, url, body, conc, total)
                ok = [r for r in results if r.ok]
                row = {
                    "tokens_per_s": sum(r.tokens for r in ok) / wall,
                    "tokens": sum(r.tokens for r in ok),
                    "failed": len(results) - len(ok),
                }
                out[name][str(conc)] = row
                print(
                    f"{name:>11} c={conc}: {row['tokens_per_s']:7.1f} tok/s "
                    f"({row['tokens']} tokens, failed {row['failed']})",
                    flush=True,
                )
        # every constrained reply parses and validates
        for _ in range(3):
            r = await client.post(url, json={**constrained, "max_tokens": 400})
            jsonschema.validate(json.loads(r.json()["choices"][0]["message"]["content"]), SCHEMA)
    return out


if __name__ == "__main__":
    sys.exit(main())
