"""Load test (issue: Hardening), loopback only, bounded in time and count.

Two workers on a fast tiny model, one controller, one gateway. N concurrent streaming
clients (default 200) hammer the gateway for a fixed time (default 60 s); then the same
clients call the workers directly for a shorter baseline. Reports failed requests, TTFT
percentiles on both paths (the difference is what the gateway adds under this load), and the
gateway's resident memory over the run (growth between the first and last tenth).

    .venv/bin/python bench/load_test.py [--clients 200] [--seconds 60] [--baseline-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from common import build_tiny_llama, pct, start_platform

BODY = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 16,
    "min_tokens": 16,
    "temperature": 0,
    "stream": True,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--baseline-seconds", type=float, default=20)
    p.add_argument("--max-requests", type=int, default=100_000, help="a bound on the total")
    p.add_argument("--out", type=Path, default=Path("bench/results/load_test.json"))
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="corral-load-"))
    model = build_tiny_llama(tmp / "tiny-fast", layers=1, hidden=64)
    capacity = ["--capacity", str(args.clients), "--max-queued", str(args.clients)]
    platform = start_platform(
        tmp, model, workers=2, worker_args=capacity, extra_args=["--log-level", "warning"]
    )
    try:
        workers = [w.url for w in platform.workers]
        report = asyncio.run(run(args, platform.gateway, workers, platform.gateways[0].pid))
    finally:
        platform.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mb"}, indent=2))
    print(f"written to {args.out}")


async def run(args: argparse.Namespace, gateway: str, workers: list[str], gateway_pid: int) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await phase(session, [gateway], 8, 3, 100)  # warm both paths
        await phase(session, workers, 8, 3, 100)
        rss: list[float] = []
        sampler = asyncio.create_task(sample_rss(gateway_pid, rss))
        via = await phase(session, [gateway], args.clients, args.seconds, args.max_requests)
        sampler.cancel()
        direct = await phase(
            session, workers, args.clients, args.baseline_seconds, args.max_requests
        )
    tenth = max(1, len(rss) // 10)
    first, last = statistics.mean(rss[:tenth]), statistics.mean(rss[-tenth:])
    report = {
        "clients": args.clients,
        "gateway": summary(via),
        "direct": summary(direct),
        "rss_mb": rss,
        "gateway_rss_first_mb": first,
        "gateway_rss_last_mb": last,
        "gateway_rss_growth": (last - first) / first,
    }
    report["added_ttft_p50_ms"] = report["gateway"]["ttft_p50_ms"] - report["direct"]["ttft_p50_ms"]
    report["added_ttft_p99_ms"] = report["gateway"]["ttft_p99_ms"] - report["direct"]["ttft_p99_ms"]
    return report


async def phase(
    session: aiohttp.ClientSession,
    bases: list[str],
    clients: int,
    seconds: float,
    max_requests: int,
) -> dict:
    stop_at = time.monotonic() + seconds
    results: dict = {"ttft": [], "ok": 0, "failed": 0, "errors": {}}

    async def client(i: int) -> None:
        url = f"{bases[i % len(bases)]}/v1/chat/completions"
        while time.monotonic() < stop_at and results["ok"] + results["failed"] < max_requests:
            start = time.perf_counter()
            ttft = None
            ok = False
            try:
                async with session.post(url, json=BODY) as r:
                    ok, ttft, error = await read_stream(r, start)
                if error:
                    results["errors"][error] = results["errors"].get(error, 0) + 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                results["errors"][type(exc).__name__] = (
                    results["errors"].get(type(exc).__name__, 0) + 1
                )
            if ok and ttft is not None:
                results["ok"] += 1
                results["ttft"].append(ttft)
            else:
                results["failed"] += 1

    began = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    results["seconds"] = time.monotonic() - began
    return results


async def read_stream(
    r: aiohttp.ClientResponse, start: float
) -> tuple[bool, float | None, str | None]:
    """(succeeded, time to the first token, what went wrong). A stream succeeds only with a
    200, at least one token, no error event, and `[DONE]` at the end; an error event followed
    by `[DONE]` (how the gateway ends a failed stream) is a failure."""
    if r.status != 200:
        return False, None, f"status {r.status}"
    ttft = None
    done = False
    error = None
    async for line in r.content:
        if not line.startswith(b"data: "):
            continue
        if line.startswith(b"data: [DONE]"):
            done = True
        elif b'"error"' in line and line.startswith(b'data: {"error"'):
            error = error or f"error event: {json.loads(line[6:])['error'].get('code')}"
        elif ttft is None and b'"role"' not in line:
            ttft = time.perf_counter() - start
    if error is None and not done:
        error = "no [DONE]"
    if error is None and ttft is None:
        error = "no token"
    return error is None, ttft, error


def summary(results: dict) -> dict:
    ttft = results["ttft"]
    return {
        "requests_ok": results["ok"],
        "requests_failed": results["failed"],
        "errors": results["errors"],
        "requests_per_s": results["ok"] / results["seconds"],
        "ttft_p50_ms": pct(ttft, 50) * 1e3,
        "ttft_p99_ms": pct(ttft, 99) * 1e3,
    }


async def sample_rss(pid: int, into: list[float]) -> None:
    process = psutil.Process(pid)
    while True:
        into.append(process.memory_info().rss / 2**20)
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    main()
