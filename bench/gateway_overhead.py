"""What the gateway adds over calling a worker directly (issue: Foundation).

Starts a controller, one worker and the gateway on loopback, then streams the same chat request
directly to the worker and through the gateway, in alternating rounds so that drift hits both
sides alike, at each concurrency. Reports TTFT p50 (time to the first content token) and streamed
output tokens/s, and the gateway/direct ratios, all from this one run; and the CPU time the
gateway and the controller spend per request on the gateway path.

    .venv/bin/python bench/gateway_overhead.py [--model PATH] [--rounds 6] [--per-round 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from common import build_tiny_llama, pct, run_streams, start_platform


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="model dir (default: the tiny random LLaMA)")
    p.add_argument("--backend", default="hf")
    p.add_argument(
        "--worker-threads",
        type=int,
        default=1,
        help="torch threads for the worker (hf): on a small machine leave the "
        "gateway and the client a core, or their CPU time is what gets measured",
    )
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--per-round", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--out", type=Path, default=Path("bench/results/gateway_overhead.json"))
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    model = Path(args.model) if args.model else build_tiny_llama(tmp / "tiny-llama")
    platform = start_platform(
        tmp,
        model,
        worker_args=[
            "--backend",
            args.backend,
            "--threads",
            str(args.worker_threads),
            "--capacity",
            str(max(args.concurrency)),
        ],
        extra_args=["--log-level", "warning"],
    )
    try:
        services = {"gateway": platform.gateways[0].pid, "controller": platform.controllers[0].pid}
        report = asyncio.run(measure(args, platform.workers[0].url, platform.gateway, services))
    finally:
        platform.stop()
    report["model"] = str(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.out}")


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    return {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}


async def measure(
    args: argparse.Namespace, direct: str, gateway: str, services: dict[str, int]
) -> dict:
    """Both paths in alternating rounds; also the CPU the gateway path costs per request in
    the gateway and the controller (on a small machine that CPU is taken from the worker)."""
    procs = {name: psutil.Process(pid) for name, pid in services.items()}
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": args.max_tokens,
        "min_tokens": args.max_tokens,
        "temperature": 0,
    }
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    report: dict = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        for base in (direct, gateway):  # warm both paths
            await run_streams(client, f"{base}/v1/chat/completions", body, 4, 8)
        print(
            f"{'conc':>4} {'path':>8} {'TTFT p50 ms':>12} {'TTFT p90 ms':>12} "
            f"{'tok/s':>9} {'failed':>6}"
        )
        for conc in args.concurrency:
            sides: dict[str, dict] = {
                "direct": {"ttft": [], "tokens": 0, "wall": 0.0, "bad": 0},
                "gateway": {"ttft": [], "tokens": 0, "wall": 0.0, "bad": 0},
            }
            cpu = dict.fromkeys(procs, 0.0)
            for _ in range(args.rounds):
                for name, base in (("direct", direct), ("gateway", gateway)):
                    before = cpu_seconds(procs)
                    results, wall = await run_streams(
                        client, f"{base}/v1/chat/completions", body, conc, args.per_round
                    )
                    if name == "gateway":
                        for service, spent in cpu_seconds(procs).items():
                            cpu[service] += spent - before[service]
                    side = sides[name]
                    side["ttft"] += [r.ttft for r in results if r.ok]
                    side["tokens"] += sum(r.tokens for r in results)
                    side["wall"] += wall
                    side["bad"] += sum(not r.ok for r in results)
            row = {"concurrency": conc}
            for name, side in sides.items():
                p50, p90 = pct(side["ttft"], 50) * 1e3, pct(side["ttft"], 90) * 1e3
                tps = side["tokens"] / side["wall"]
                row[name] = {
                    "ttft_p50_ms": p50,
                    "ttft_p90_ms": p90,
                    "tokens_per_s": tps,
                    "failed": side["bad"],
                }
                print(f"{conc:>4} {name:>8} {p50:>12.2f} {p90:>12.2f} {tps:>9.1f} {side['bad']:>6}")
            row["added_ttft_p50_ms"] = row["gateway"]["ttft_p50_ms"] - row["direct"]["ttft_p50_ms"]
            row["tokens_per_s_ratio"] = (
                row["gateway"]["tokens_per_s"] / row["direct"]["tokens_per_s"]
            )
            requests = args.rounds * args.per_round
            row["cpu_ms_per_request"] = {k: v / requests * 1e3 for k, v in cpu.items()}
            print(
                f"     added TTFT p50 {row['added_ttft_p50_ms']:+.2f} ms; "
                f"tokens/s gateway/direct {row['tokens_per_s_ratio']:.3f}; CPU per request: "
                + ", ".join(f"{k} {v:.2f} ms" for k, v in row["cpu_ms_per_request"].items())
            )
            report["runs"].append(row)
    return report


if __name__ == "__main__":
    main()
