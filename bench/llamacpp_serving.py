"""The llamacpp backend through Corral vs llama-cpp-python's own OpenAI server (issue 16).

One run, one GGUF (the default SmolLM2-135M-Instruct Q4_1), the same llama.cpp build and the
same threads and context size on both sides:

1. tokens/s at concurrency 1: Corral's full path (gateway -> controller -> llamacpp worker)
   vs `python -m llama_cpp.server` (given flash attention, which llama.cpp's "auto" turns on in
   Corral's contexts, so both compute alike and stream the same text), streamed greedy
   completions of the same prompt, in
   alternating rounds so that drift on a shared machine hits both alike. Reported: streamed
   output tokens / request wall time (prompt included) for the median request and over all
   requests (which a stall of the shared machine skews), and the decode rate between the first
   and the last token; the ratio corral/native on the median request (target >= 0.95).
2. resident memory (VmRSS, and the peak VmHWM) after the runs: the llamacpp worker, the whole
   Corral stack, llama_cpp.server, and a Corral hf worker on the converted float32 model.

llama_cpp.server runs from a venv of its own (`llama-cpp-python[server]`, never a Corral
dependency), created on first use under $CORRAL_HOME/bench/ with the wheel pip cached when
Corral's own was built.

    .venv/bin/python bench/llamacpp_serving.py [--threads 2] [--rounds 6] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import Service, free_port
from corral.paths import corral_home

from model_worker.model_files import resolve_model

PROMPT = "Write a long story about a robot who learns to paint. Once upon a time,"
LLAMA_CPP_PYTHON = "llama-cpp-python[server]==0.3.36"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2", help="a built-in name or a .gguf file")
    p.add_argument("--threads", type=int, default=2, help="llama.cpp threads, both servers")
    p.add_argument("--ctx", type=int, default=2048, help="context size, both servers")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--per-round", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--server-python", type=Path, help="a python with llama-cpp-python[server]")
    p.add_argument("--out", type=Path, default=Path("bench/results/llamacpp_serving.json"))
    args = p.parse_args()
    source = resolve_model(args.model)
    if source.gguf is None:
        sys.exit(f"{args.model} is not a GGUF")
    server_python = args.server_python or _server_venv()
    logs = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "gguf": str(source.gguf),
        "gguf_mb": source.gguf.stat().st_size / 2**20,
        "threads": args.threads,
        "ctx": args.ctx,
        "max_tokens": args.max_tokens,
        "cpus": os.cpu_count(),
    }
    native_port = free_port()
    native = Service(
        "llama_cpp.server",
        ["llama_cpp.server", "--model", str(source.gguf), "--model_alias", source.name,
         "--host", "127.0.0.1", "--port", str(native_port), "--n_ctx", str(args.ctx),
         "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
         "--flash_attn", "true"],
        logs,
        program=[str(server_python), "-m"],
    )  # fmt: skip
    corral, gateway = _corral_stack(source, args, logs)
    try:
        native.start()
        native.wait_until(f"http://127.0.0.1:{native_port}/v1/models", 300)
        for s in corral:
            s.start()
        corral[-1].wait_until(f"{gateway}/v1/models", 300, ok=lambda r: bool(r.json()["data"]))
        targets = {"corral": gateway, "native": f"http://127.0.0.1:{native_port}"}
        report["runs"] = asyncio.run(_alternate(targets, source.name, args))
        report["rss_mb"] = {
            "corral_llamacpp_worker": _memory(corral[1].pid),
            "corral_stack_total": _sum_memory([s.pid for s in corral]),
            "llama_cpp_server": _memory(native.pid),
        }
    finally:
        for s in [*reversed(corral), native]:
            s.stop(timeout=30)
    report["rss_mb"]["corral_hf_worker_float32"] = _hf_worker_memory(source, args, logs)
    _summarise(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


def _corral_stack(source: Any, args: argparse.Namespace, logs: Path) -> tuple[list[Service], str]:
    """Controller, llamacpp worker and gateway (in that order), not started yet."""
    cport, wport, gport = free_port(), free_port(), free_port()
    ctl = f"http://127.0.0.1:{cport}"
    quiet = ["--log-level", "warning"]
    services = [
        Service("controller", ["controller", "--port", str(cport), *quiet], logs),
        Service(
            "worker",
            ["model_worker", "--model-path", str(source.gguf), "--model-name", source.name,
             "--backend", "llamacpp", "--threads", str(args.threads), "--max-model-len",
             str(args.ctx), "--port", str(wport), "--controller-url", ctl, *quiet],
            logs,
        ),
        Service(
            "gateway", ["openai_api", "--port", str(gport), "--controller-url", ctl, *quiet], logs
        ),
    ]  # fmt: skip

    return services, f"http://127.0.0.1:{gport}"


async def _alternate(targets: dict[str, str], model: str, args: argparse.Namespace) -> dict:
    bodies = {
        "corral": {"model": model, "prompt": PROMPT, "max_tokens": args.max_tokens,
                   "temperature": 0},
        # llama_cpp.server's defaults add a 1.1 repeat penalty: switch it off to match
        "native": {"model": model, "prompt": PROMPT, "max_tokens": args.max_tokens,
                   "temperature": 0, "repeat_penalty": 1.0},
    }  # fmt: skip
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    async with httpx.AsyncClient(timeout=600) as client:
        for name, base in targets.items():  # warm up (first-touch of the mapped weights)
            await _stream(client, f"{base}/v1/completions", bodies[name])
        for _ in range(args.rounds):
            for name, base in targets.items():
                for _ in range(args.per_round):
                    samples[name].append(
                        await _stream(client, f"{base}/v1/completions", bodies[name])
                    )
    texts = {row["text"] for rows in samples.values() for row in rows}
    out: dict[str, Any] = {"same_text_everywhere": len(texts) == 1}
    for name, rows in samples.items():
        out[name] = {
            "requests": len(rows),
            "tokens_mean": statistics.mean(r["tokens"] for r in rows),
            "tokens_per_s": sum(r["tokens"] for r in rows) / sum(r["wall"] for r in rows),
            "tokens_per_s_median": statistics.median(r["tokens"] / r["wall"] for r in rows),
            "wall_s_max": max(r["wall"] for r in rows),
            "decode_tokens_per_s": statistics.median(r["decode_rate"] for r in rows),
            "ttft_ms_p50": statistics.median(r["ttft"] for r in rows) * 1e3,
        }
    return out


async def _stream(client: httpx.AsyncClient, url: str, body: dict) -> dict[str, Any]:
    """One streamed completion; tokens = chunks carrying text (one token each on both)."""
    start = time.perf_counter()
    stamps: list[float] = []
    text: list[str] = []
    async with client.stream("POST", url, json={**body, "stream": True}) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            pieces = [c.get("text") or "" for c in event.get("choices", ())]
            if any(pieces):
                stamps.append(time.perf_counter())
                text += pieces
    wall = time.perf_counter() - start
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return {
        "tokens": len(stamps),
        "wall": wall,
        "ttft": stamps[0] - start,
        "decode_rate": decode,
        "text": "".join(text),
    }


def _memory(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss": fields["VmRSS"], "peak": fields["VmHWM"]}


def _sum_memory(pids: list[int]) -> dict[str, float]:
    parts = [_memory(pid) for pid in pids]
    return {key: sum(p[key] for p in parts) for key in ("rss", "peak")}


def _hf_worker_memory(source: Any, args: argparse.Namespace, logs: Path) -> dict[str, float]:
    """A Corral hf worker on the float32 conversion: memory after one generation."""
    converted = source.hf_dir()
    port = free_port()
    worker = Service(
        "hf-worker",
        ["model_worker", "--model-path", str(converted), "--model-name", source.name,
         "--backend", "hf", "--dtype", "float32", "--threads", str(args.threads),
         "--max-model-len", str(args.ctx), "--port", str(port), "--log-level", "warning"],
        logs,
        env={"CORRAL_WORKER_CONTROLLER_URLS": "[]"},
    )  # fmt: skip
    try:
        worker.start()
        worker.wait_until(f"http://127.0.0.1:{port}/v1/models", 600)
        body = {"model": source.name, "prompt": PROMPT, "max_tokens": 16, "temperature": 0}
        httpx.post(f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=600)
        return _memory(worker.pid)
    finally:
        worker.stop(timeout=30)


def _summarise(report: dict) -> None:
    runs, rss = dict(report["runs"]), report["rss_mb"]
    same = runs.pop("same_text_everywhere")
    ratio = runs["corral"]["tokens_per_s_median"] / runs["native"]["tokens_per_s_median"]
    overall = runs["corral"]["tokens_per_s"] / runs["native"]["tokens_per_s"]
    decode = runs["corral"]["decode_tokens_per_s"] / runs["native"]["decode_tokens_per_s"]
    report["corral_vs_native_tokens_per_s"] = ratio
    report["corral_vs_native_tokens_per_s_all_requests"] = overall
    report["corral_vs_native_decode_rate"] = decode
    for name, row in runs.items():
        print(
            f"{name:>7}: {row['tokens_per_s_median']:6.1f} tok/s end to end (median request; "
            f"{row['tokens_per_s']:5.1f} over all, slowest {row['wall_s_max']:.1f} s), "
            f"{row['decode_tokens_per_s']:6.1f} tok/s decoding, "
            f"TTFT p50 {row['ttft_ms_p50']:5.1f} ms, {row['tokens_mean']:.0f} tokens"
        )
    print(
        f"corral / llama_cpp.server tokens/s at concurrency 1: {ratio:.3f} (median request; "
        f"{overall:.3f} over all requests; decode rate {decode:.3f})"
    )
    print(f"both servers streamed the same greedy text every time: {same}")
    for name, mem in rss.items():
        print(f"RSS {name:>26}: {mem['rss']:7.1f} MiB (peak {mem['peak']:7.1f})")


def _server_venv() -> Path:
    """A venv with llama-cpp-python[server], made once (pip reuses the cached wheel)."""
    venv = corral_home() / "bench" / "llamacpp-server-venv"
    python = venv / "bin" / "python"
    if not (venv / ".ready").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=OFF")}
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON], check=True, env=env
        )
        (venv / ".ready").write_text(LLAMA_CPP_PYTHON)
    return python


if __name__ == "__main__":
    main()
