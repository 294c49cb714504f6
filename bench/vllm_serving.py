"""vLLM serving through Corral (issue: vLLM backend), two figures from one run.

1. Continuous batching: output tokens/s of 8 concurrent streams vs. 1, on a Corral vllm worker
   (called directly) serving SmolLM2.
2. Corral's full path (gateway -> controller -> vllm worker) vs. vLLM's own OpenAI server on the
   same model with the same engine settings, at concurrency 8: output tokens/s ratio and TTFT p50.

The two stacks run one after the other, never together, so they do not share the CPU.

    .venv/bin/python bench/vllm_serving.py [--model smollm2] [--requests 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import Service, free_port, pct, run_streams

from model_worker.model_files import resolve_model

PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--requests", type=int, default=24, help="streams per measurement")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--engine-args",
        default="--dtype float32 --enforce-eager --gpu-memory-utilization 0.3 --max-num-seqs 32",
        help="the same engine settings for both servers",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results/vllm_serving.json"))
    args = p.parse_args()
    source = resolve_model(args.model)
    model_dir = source.hf_dir()  # vLLM loads the converted checkpoint
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    body = {
        "model": source.name,
        "messages": PROMPT,
        "max_tokens": args.max_tokens,
        "min_tokens": args.max_tokens,
        "temperature": 0,
    }
    engine = args.engine_args.split()
    report: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": str(model_dir),
        "engine_args": args.engine_args,
    }

    port = free_port()
    native = Service(
        "vllm-native",
        [
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            source.name,
            "--port",
            str(port),
            *engine,
        ],
        tmp,
    )
    report["vllm_native"] = measure_stack([native], f"http://127.0.0.1:{port}", body, args)

    cport, wport, gport = free_port(), free_port(), free_port()
    ctl = f"http://127.0.0.1:{cport}"
    corral = [
        Service("controller", ["controller", "--port", str(cport), "--log-level", "warning"], tmp),
        Service(
            "worker",
            [
                "model_worker",
                "--model-path",
                str(model_dir),
                "--model-name",
                source.name,
                "--backend",
                "vllm",
                "--port",
                str(wport),
                "--controller-url",
                ctl,
                "--log-level",
                "warning",
                *engine,
            ],
            tmp,
        ),
        Service(
            "gateway",
            ["openai_api", "--port", str(gport), "--controller-url", ctl, "--log-level", "warning"],
            tmp,
        ),
    ]
    report["corral"] = measure_stack(
        corral, f"http://127.0.0.1:{gport}", body, args, direct=f"http://127.0.0.1:{wport}"
    )

    c8, n8 = report["corral"]["gateway"]["8"], report["vllm_native"]["gateway"]["8"]
    d1, d8 = report["corral"]["direct"]["1"], report["corral"]["direct"]["8"]
    report["batching_speedup_8_vs_1"] = d8["tokens_per_s"] / d1["tokens_per_s"]
    report["corral_vs_native_tokens_per_s_c8"] = c8["tokens_per_s"] / n8["tokens_per_s"]
    report["corral_minus_native_ttft_p50_ms_c8"] = c8["ttft_p50_ms"] - n8["ttft_p50_ms"]
    print(
        f"\ncontinuous batching, corral vllm worker: 8 streams give "
        f"{report['batching_speedup_8_vs_1']:.2f}x the tokens/s of 1"
    )
    print(
        f"corral full path vs vLLM's own server at concurrency 8: tokens/s ratio "
        f"{report['corral_vs_native_tokens_per_s_c8']:.3f}, TTFT p50 "
        f"{report['corral_minus_native_ttft_p50_ms_c8']:+.1f} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


def measure_stack(
    services: list[Service],
    base: str,
    body: dict,
    args: argparse.Namespace,
    direct: str | None = None,
) -> dict:
    try:
        for s in services:
            s.start()
        services[-1].wait_until(f"{base}/v1/models", 900, ok=lambda r: bool(r.json()["data"]))
        targets = {"gateway": base, **({"direct": direct} if direct else {})}
        return asyncio.run(_measure(targets, body, args))
    finally:
        for s in reversed(services):
            s.stop(timeout=60)


async def _measure(targets: dict[str, str], body: dict, args: argparse.Namespace) -> dict:
    out: dict = {}
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=64)) as client:
        for base in targets.values():  # warm up: first requests build kernels and caches
            await run_streams(client, f"{base}/v1/chat/completions", body, 8, 8)
        for name, base in targets.items():
            out[name] = {}
            for conc in (1, 8):
                total = args.requests if conc == 8 else max(4, args.requests // 4)
                results, wall = await run_streams(
                    client, f"{base}/v1/chat/completions", body, conc, total
                )
                ok = [r for r in results if r.ok]
                row = {
                    "ttft_p50_ms": pct([r.ttft for r in ok], 50) * 1e3,
                    "tokens_per_s": sum(r.tokens for r in ok) / wall,
                    "failed": len(results) - len(ok),
                }
                out[name][str(conc)] = row
                print(
                    f"{name:>8} c={conc}: TTFT p50 {row['ttft_p50_ms']:8.1f} ms  "
                    f"{row['tokens_per_s']:7.1f} tok/s  failed {row['failed']}",
                    flush=True,
                )
    return out


if __name__ == "__main__":
    sys.exit(main())
