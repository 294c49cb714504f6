"""What the gateway's relay costs in CPU, alone: the gateway in front of the fake upstream.

Starts a controller, `bench/fake_worker.py` (paced streams: every token its own write) and the
gateway on loopback with one static key, then runs two phases of `--concurrency` streams at a
time through the gateway: long streams (`--tokens` each) and one-token streams. The gateway's
CPU time (user + system, psutil, children included) in each phase gives two equations,
cpu = requests * per_request + tokens * per_token, solved for both. Also reported: the
upstream's own CPU per token, relayed tokens/s and TTFT p50/p95 through the gateway.

    .venv/bin/python bench/relay_cost.py [--concurrency 64] [--tokens 128] [--interval 0.02]
        [--requests 512] [--gateway-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from common import Service, free_port, pct

HERE = Path(__file__).resolve().parent
KEY = "sk-bench-relay-cost"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--interval", type=float, default=0.02, help="upstream seconds per token")
    p.add_argument("--requests", type=int, default=512, help="long streams in the long phase")
    p.add_argument(
        "--gateway-workers", type=int, default=1, help="gateway processes (corral api --workers)"
    )
    p.add_argument("--out", type=Path, default=Path("bench/results/relay_cost.json"))
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="corral-relay-cost-"))
    services: list[Service] = []

    def start(name: str, argv: list[str], program: list[str] | None = None) -> Service:
        s = Service(name, argv, tmp, program=program)
        services.append(s.start())
        return s

    try:
        cport, wport, gport = free_port(), free_port(), free_port()
        controller = start(
            "controller", ["controller", "--port", str(cport), "--log-level", "warning"]
        )
        controller.url = f"http://127.0.0.1:{cport}"
        controller.wait_until(f"{controller.url}/health", 60)
        upstream = start(
            "fake_worker",
            [
                str(HERE / "fake_worker.py"),
                "--port",
                str(wport),
                "--controller-url",
                controller.url,
                "--tokens",
                str(args.tokens),
                "--interval",
                str(args.interval),
            ],
            program=[sys.executable],
        )
        gw_args = ["openai_api", "--port", str(gport), "--controller-url", controller.url]
        gw_args += ["--api-key", KEY, "--require-keys", "--log-level", "warning"]
        gw_args += ["--max-streams-per-key", str(args.concurrency * 2)]
        if args.gateway_workers > 1:
            gw_args += ["--workers", str(args.gateway_workers)]
        gateway = start("gateway", gw_args)
        gateway.url = f"http://127.0.0.1:{gport}"
        gateway.wait_until(f"{gateway.url}/health", 60)
        controller.wait_until(
            f"{controller.url}/internal/workers", 30, ok=lambda r: len(r.json()) == 1
        )
        report = asyncio.run(measure(args, gateway, upstream))
    finally:
        for s in reversed(services):
            s.stop()
    report["logs"] = str(tmp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"\nwritten to {args.out}")


def cpu(proc: psutil.Process) -> float:
    """User + system seconds of a process and its children (gateway workers) so far."""
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


async def one_stream(
    session: aiohttp.ClientSession, url: str, max_tokens: int
) -> tuple[float, int, bool]:
    """TTFT (first content token), completion tokens (from the usage chunk), ok."""
    body = {
        "model": "fake",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": max_tokens,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    ttft = 0.0
    tail = b""
    async with session.post(url, json=body) as r:
        if r.status != 200:
            return 0.0, 0, False
        async for data in r.content.iter_any():
            if not ttft and b'"content":" ' in data:
                ttft = time.perf_counter() - start
            tail = (tail + data)[-512:]
    ok = tail.endswith(b"data: [DONE]\n\n")
    tokens = 0
    if b'"usage"' in tail:
        event = tail[tail.rfind(b"data: {") + 6 :].split(b"\n\n")[0]
        tokens = json.loads(event)["usage"]["completion_tokens"]
    return ttft, tokens, ok


async def phase(
    session: aiohttp.ClientSession, url: str, concurrency: int, total: int, max_tokens: int
) -> tuple[list[tuple[float, int, bool]], float]:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> tuple[float, int, bool]:
        async with sem:
            return await one_stream(session, url, max_tokens)

    start = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(total)))
    return list(results), time.perf_counter() - start


async def measure(args: argparse.Namespace, gateway: Service, upstream: Service) -> dict:
    gw, up = psutil.Process(gateway.pid), psutil.Process(upstream.pid)
    url = f"{gateway.url}/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    headers = {"Authorization": f"Bearer {KEY}"}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
        await phase(s, url, args.concurrency, args.concurrency, 8)  # warm up connections
        figures = {}
        for name, total, max_tokens in (
            ("long", args.requests, args.tokens),
            ("short", args.requests, 1),
        ):
            gw0, up0 = cpu(gw), cpu(up)
            results, wall = await phase(s, url, args.concurrency, total, max_tokens)
            gw_cpu, up_cpu = cpu(gw) - gw0, cpu(up) - up0
            tokens = sum(t for _, t, _ in results)
            ttfts = [t for t, _, ok in results if ok and t]
            figures[name] = {
                "requests": total,
                "ok": sum(ok for _, _, ok in results),
                "tokens": tokens,
                "wall_s": round(wall, 3),
                "tokens_per_s": round(tokens / wall, 1),
                "gateway_cpu_s": round(gw_cpu, 3),
                "upstream_cpu_s": round(up_cpu, 3),
                "ttft_p50_ms": round(pct(ttfts, 50) * 1000, 1),
                "ttft_p95_ms": round(pct(ttfts, 95) * 1000, 1),
            }
            print(name, figures[name], flush=True)
    long, short = figures["long"], figures["short"]
    # gateway_cpu = requests * per_request + tokens * per_token, in both phases
    det = long["requests"] * short["tokens"] - short["requests"] * long["tokens"]
    per_token = (
        long["requests"] * short["gateway_cpu_s"] - short["requests"] * long["gateway_cpu_s"]
    ) / det
    per_request = (long["gateway_cpu_s"] - long["tokens"] * per_token) / long["requests"]
    return {
        "concurrency": args.concurrency,
        "tokens_per_stream": args.tokens,
        "interval_s": args.interval,
        "gateway_workers": args.gateway_workers,
        "cores": psutil.cpu_count(),
        "gateway_ms_per_token": round(per_token * 1000, 4),
        "gateway_ms_per_request": round(per_request * 1000, 3),
        "gateway_ms_per_token_all_in": round(long["gateway_cpu_s"] / long["tokens"] * 1000, 4),
        "upstream_ms_per_token_all_in": round(long["upstream_cpu_s"] / long["tokens"] * 1000, 4),
        "phases": figures,
    }


if __name__ == "__main__":
    main()
