"""Hostile mix (issue 11), loopback only, bounded in time: normal traffic while, at the same
time, slow readers, oversize batches and made-up model names hit the same gateway.

Two workers on a fast tiny model, one controller, one gateway. For `--seconds` (default 60):

- normal clients stream chat completions one after another (the figure that matters: how many
  of them failed, which must be 0);
- slow readers open heavy streams (16 choices, 20 alternatives per token) on sockets they never
  read, each held for twice the write-idle timeout, then opened again;
- a client sends completions batches one prompt over `--max-prompts` (each must be a 400);
- a client sends chat requests for random model names (each must be a 404).

Reports normal requests ok/failed, the hostile requests' statuses, workers dropped (the
controller listing fewer than two workers at any one-second check) and the gateway's resident
memory growth (first tenth of the run against the last).

    .venv/bin/python bench/hostile_mix.py [--seconds 60] [--normal-clients 8] [--slow-readers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from common import build_tiny_llama, start_platform
from load_test import BODY, read_stream

HEAVY = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "n": 16,
    "max_tokens": 480,
    "min_tokens": 480,
    "logprobs": True,
    "top_logprobs": 20,
    "temperature": 1.0,
    "stream": True,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--normal-clients", type=int, default=8)
    p.add_argument("--slow-readers", type=int, default=2)
    p.add_argument("--write-idle-timeout", type=float, default=10)
    p.add_argument("--out", type=Path, default=Path("bench/results/hostile_mix.json"))
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="corral-hostile-"))
    model = build_tiny_llama(tmp / "tiny-fast", layers=1, hidden=64)
    idle = ["--write-idle-timeout", str(args.write_idle_timeout)]
    platform = start_platform(
        tmp,
        model,
        workers=2,
        worker_args=["--capacity", "8", "--max-queued", "64", *idle],
        gateway_args=idle,
        extra_args=["--log-level", "warning"],
    )
    try:
        report = asyncio.run(run(args, platform.gateway, platform.controller, platform))
    finally:
        platform.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mb"}, indent=2))
    print(f"written to {args.out}")


async def run(args: argparse.Namespace, gateway: str, controller: str, platform: Any) -> dict:
    stop_at = time.monotonic() + args.seconds
    normal: dict[str, int] = {"ok": 0}
    hostile: dict[str, dict[str, int]] = {"oversize": {}, "unknown_model": {}, "slow": {}}
    workers_seen: list[int] = []
    rss: list[float] = []
    gateway_proc = psutil.Process(platform.gateways[0].pid)

    def count(into: dict[str, int], key: object) -> None:
        into[str(key)] = into.get(str(key), 0) + 1

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def normal_client() -> None:
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                try:
                    async with session.post(f"{gateway}/v1/chat/completions", json=BODY) as r:
                        ok, _, error = await read_stream(r, start)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    ok, error = False, type(exc).__name__
                count(normal, "ok" if ok else error)

        async def slow_reader() -> None:
            host, port = gateway.removeprefix("http://").split(":")
            while time.monotonic() < stop_at:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
                _, writer = await asyncio.open_connection(sock=sock, limit=4096)
                data = json.dumps(HEAVY).encode()
                head = (
                    f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                )
                writer.write(head.encode() + data)
                await writer.drain()
                writer.transport.pause_reading()  # read nothing
                left = max(0.0, stop_at - time.monotonic())
                await asyncio.sleep(min(2 * args.write_idle_timeout, left))
                writer.close()
                count(hostile["slow"], "opened")

        async def oversize() -> None:
            body = {"model": "tiny", "prompt": ["a"] * 65, "max_tokens": 1}
            while time.monotonic() < stop_at:
                async with session.post(f"{gateway}/v1/completions", json=body) as r:
                    await r.read()
                    count(hostile["oversize"], r.status)
                await asyncio.sleep(0.05)

        async def unknown_models() -> None:
            while time.monotonic() < stop_at:
                body = {**BODY, "stream": False, "model": uuid.uuid4().hex}
                async with session.post(f"{gateway}/v1/chat/completions", json=body) as r:
                    await r.read()
                    count(hostile["unknown_model"], r.status)

        async def watch() -> None:
            while time.monotonic() < stop_at:
                async with session.get(f"{controller}/internal/workers") as r:
                    workers_seen.append(len(await r.json()))
                rss.append(gateway_proc.memory_info().rss / 2**20)
                await asyncio.sleep(1.0)

        began = time.monotonic()
        await asyncio.gather(
            *(normal_client() for _ in range(args.normal_clients)),
            *(slow_reader() for _ in range(args.slow_readers)),
            oversize(),
            unknown_models(),
            watch(),
        )
        seconds = time.monotonic() - began
    tenth = max(1, len(rss) // 10)
    first, last = statistics.mean(rss[:tenth]), statistics.mean(rss[-tenth:])
    return {
        "seconds": seconds,
        "normal_ok": normal["ok"],
        "normal_failed": sum(v for k, v in normal.items() if k != "ok"),
        "normal_errors": {k: v for k, v in normal.items() if k != "ok"},
        "hostile": hostile,
        "workers_dropped": sum(1 for n in workers_seen if n < 2),
        "gateway_rss_first_mb": first,
        "gateway_rss_last_mb": last,
        "gateway_rss_growth_pct": 100 * (last - first) / first,
        "rss_mb": rss,
    }


if __name__ == "__main__":
    main()
