"""Cache-aware routing vs shortest queue on a multi-turn chat workload (issue 17, item 5).

For each policy in turn (never together): a controller with `--policy P`, `--workers` workers
of one model and a gateway on loopback. Each of `--conversations` conversations has a system
prompt of its own (`--system-words` random words: ~1.3 tokens a word on SmolLM2's tokenizer)
and `--turns` turns; a turn is sent once the previous one is answered, with the whole history,
and `--concurrency` conversations run at once. Reported per policy: TTFT p50/p95, output
tokens/s, the share of requests each worker got, and each worker's prefix-cache hit rate
(`corral_worker_prefix_cache_*` from its /metrics); and the shortest_queue / cache_aware
TTFT p50 ratio.

Size it the way production is: the conversations' prefixes together should exceed one worker's
KV cache but fit in both (limit the cache through `--worker-args`, e.g. vLLM's
`--gpu-memory-utilization`), or every policy hits the cache alike.

    .venv/bin/python bench/cache_routing.py --backend vllm --conversations 48 --turns 5 \\
        --system-words 1900 --worker-args "--enforce-eager --gpu-memory-utilization 0.05"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from common import Service, free_port, pct

from model_worker.model_files import resolve_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--backend", default="vllm")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--conversations", type=int, default=48)
    p.add_argument("--turns", type=int, default=5)
    p.add_argument("--system-words", type=int, default=1900, help="per conversation")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=16, help="conversations at once")
    p.add_argument("--worker-args", default="", help="extra flags for every worker")
    p.add_argument("--policies", nargs="+", default=["shortest_queue", "cache_aware"])
    p.add_argument("--out", type=Path, default=Path("bench/results/cache_routing.json"))
    args = p.parse_args()

    source = resolve_model(args.model)
    model_path = str(source.hf_dir()) if args.backend in ("vllm", "hf") else args.model
    report: dict = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args) | {"out": ""}}
    for policy in args.policies:
        tmp = Path(tempfile.mkdtemp(prefix=f"corral-cache-{policy}-"))
        services: list[Service] = []
        try:
            gateway, workers = start(args, policy, model_path, source.name, tmp, services)
            report[policy] = asyncio.run(measure(args, source.name, gateway, workers))
        finally:
            for s in reversed(services):
                s.stop()
        print(policy, json.dumps(report[policy], indent=2), flush=True)
    if {"shortest_queue", "cache_aware"} <= set(report):
        sq, ca = report["shortest_queue"], report["cache_aware"]
        report["ttft_p50_ratio"] = round(sq["ttft_p50_ms"] / ca["ttft_p50_ms"], 2)
        report["throughput_ratio"] = round(ca["tokens_per_s"] / sq["tokens_per_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if "ratio" in k}))
    print(f"written to {args.out}")


def start(
    args: argparse.Namespace,
    policy: str,
    model_path: str,
    name: str,
    tmp: Path,
    services: list[Service],
) -> tuple[str, list[str]]:
    quiet = ["--log-level", "warning"]
    cport = free_port()
    argv = ["controller", "--port", str(cport), "--policy", policy, *quiet]
    ctl = Service("controller", argv, tmp)
    ctl.url = f"http://127.0.0.1:{cport}"
    services.append(ctl.start())
    ctl.wait_until(f"{ctl.url}/health", 60)
    workers = []
    for i in range(args.workers):
        port = free_port()
        argv = ["model_worker", "--model-path", model_path, "--model-name", name]
        argv += ["--backend", args.backend, "--port", str(port), "--controller-url", ctl.url]
        argv += [*quiet, *shlex.split(args.worker_args)]
        services.append(Service(f"worker{i}", argv, tmp).start())
        workers.append(f"http://127.0.0.1:{port}")
    gport = free_port()
    argv = ["openai_api", "--port", str(gport), "--controller-url", ctl.url, *quiet]
    gateway = Service("gateway", argv, tmp)
    gateway.url = f"http://127.0.0.1:{gport}"
    services.append(gateway.start())
    gateway.wait_until(f"{gateway.url}/health", 60)
    ctl.wait_until(f"{ctl.url}/internal/workers", 900, ok=lambda r: len(r.json()) == args.workers)
    return gateway.url, workers


def system_prompt(rng: random.Random, words: int) -> str:
    vocab = [
        "river", "stone", "lamp", "garden", "winter", "copper", "signal", "harbor", "meadow",
        "engine", "letter", "orbit", "candle", "forest", "market", "silver", "thread", "valley",
    ]  # fmt: skip
    return "You are a helpful assistant. Context: " + " ".join(
        rng.choice(vocab) + str(rng.randrange(100)) for _ in range(words)
    )


async def turn(
    session: aiohttp.ClientSession, url: str, model: str, messages: list, max_tokens: int
) -> tuple[float, int, str, str]:
    """TTFT, completion tokens, the answer's text, the worker that served it."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    ttft, tokens, text = 0.0, 0, []
    async with session.post(f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        worker = r.headers.get("x-corral-worker", "?")
        async for line in r.content:
            if not line.startswith(b"data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            for choice in event.get("choices", ()):
                piece = choice["delta"].get("content")
                if piece:
                    ttft = ttft or time.perf_counter() - start
                    text.append(piece)
    return ttft, tokens, "".join(text), worker


async def measure(args: argparse.Namespace, model: str, gateway: str, workers: list[str]) -> dict:
    rng = random.Random(17)
    systems = [system_prompt(rng, args.system_words) for _ in range(args.conversations)]
    sem = asyncio.Semaphore(args.concurrency)
    ttfts: list[float] = []
    served: Counter[str] = Counter()
    tokens = 0

    async def conversation(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal tokens
        async with sem:
            messages = [{"role": "system", "content": systems[i]}]
            for t in range(args.turns):
                messages.append({"role": "user", "content": f"Question {t}: what about item {t}?"})
                ttft, n, text, worker = await turn(
                    session, gateway, model, messages, args.max_tokens
                )
                ttfts.append(ttft)
                tokens += n
                served[worker] += 1
                messages.append({"role": "assistant", "content": text})

    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(conversation(session, i) for i in range(args.conversations)))
        wall = time.perf_counter() - start
        hit_rates = {w: await hit_rate(session, w) for w in workers}
    total = sum(served.values())
    return {
        "requests": total,
        "ttft_p50_ms": round(pct(ttfts, 50) * 1000, 1),
        "ttft_p95_ms": round(pct(ttfts, 95) * 1000, 1),
        "tokens_per_s": round(tokens / wall, 1),
        "wall_s": round(wall, 1),
        "share_per_worker": {w: round(n / total, 3) for w, n in served.most_common()},
        "prefix_cache_hit_rate": hit_rates,
    }


async def hit_rate(session: aiohttp.ClientSession, worker: str) -> float | None:
    async with session.get(f"{worker}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("corral_worker_prefix_cache_hit_rate "):
            return round(float(line.split()[1]), 3)
    return None  # a backend without a prefix cache


if __name__ == "__main__":
    main()
