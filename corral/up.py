"""`corral up`: controller, one worker per model and the gateway as child processes.

Prints the URLs and a ready line once `/v1/models` lists every model. Ctrl-C or SIGTERM stops
the children (SIGTERM, then SIGKILL after a grace period); each child also gets SIGTERM from the
kernel if this process dies without cleaning up, so nothing is orphaned.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx

from corral.cliargs import add_logging_flag

PR_SET_PDEATHSIG = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--model",
        dest="models",
        action="append",
        help="built-in name (smollm2), .gguf file or HF model dir; repeatable (default: smollm2)",
    )
    a("--backend", default="auto", choices=["auto", "hf", "vllm", "llamacpp"])
    a("--host", default="127.0.0.1")
    a("--api-port", type=int, default=8000)
    a("--controller-port", type=int, default=21001)
    a("--worker-port", type=int, default=21002, help="first worker port; others follow")
    a("--ready-timeout", type=float, default=900.0, help="seconds to wait for every model")
    a("--store-url", help="redis://host:port/db to keep state in Redis (default: embedded)")
    a("--webui-port", type=int, default=7860)
    a("--no-webui", dest="webui", action="store_false", help="do not start the web UI")
    add_logging_flag(parser)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Supervisor:
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> None:
        cmd = [sys.executable, "-m", *args]
        proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent if os.name == "posix" else None)
        self.children.append((name, proc))

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.children if p.poll() is not None]

    def stop(self, grace: float = 15.0) -> None:
        for _, proc in reversed(self.children):  # gateway first, controller last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _served_name(model: str) -> str:
    from pathlib import Path

    from model_worker.model_files import BUILTIN_MODELS

    if model in BUILTIN_MODELS:
        return BUILTIN_MODELS[model][2]
    path = Path(model)
    return path.stem if path.suffix == ".gguf" else path.name


def run(args: argparse.Namespace) -> int:
    models = args.models or ["smollm2"]
    names = [_served_name(m) for m in models]
    if len(set(names)) != len(names):
        print(f"corral up: two models share a name: {names}", file=sys.stderr)
        return 2
    host = args.host
    controller = f"http://{host}:{args.controller_port}"
    api = f"http://{host}:{args.api_port}"
    log = ["--log-level", args.log_level]
    sup = Supervisor()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        store = ["--store-url", args.store_url] if args.store_url else []
        port = str(args.controller_port)
        sup.start("controller", ["controller", "--host", host, "--port", port, *store, *log])
        for i, (model, name) in enumerate(zip(models, names, strict=True)):
            port = args.worker_port + i
            sup.start(
                f"worker {name}",
                [
                    "model_worker",
                    "--model-path",
                    model,
                    "--model-name",
                    name,
                    "--backend",
                    args.backend,
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--controller-url",
                    controller,
                    *log,
                ],
            )
        sup.start(
            "api",
            [
                "openai_api",
                "--host",
                host,
                "--port",
                str(args.api_port),
                "--controller-url",
                controller,
                *store,
                *log,
            ],
        )
        print(
            f"corral: controller {controller}  api {api}/v1  models {', '.join(names)}", flush=True
        )
        web = ""
        if args.webui:
            # Started now, not after the models: its imports take seconds and overlap the model
            # load; it waits for the gateway to list every model itself, as long as we do.
            webui = f"http://{host}:{args.webui_port}"
            sup.start(
                "webui",
                [
                    "webui",
                    "--host",
                    host,
                    "--port",
                    str(args.webui_port),
                    "--api-url",
                    f"{api}/v1",
                    "--startup-timeout",
                    str(args.ready_timeout),
                    *(arg for name in names for arg in ("--wait-for-model", name)),
                    *store,
                    *log,
                ],
            )
        if not _wait_ready(f"{api}/v1/models", names, sup, args.ready_timeout):
            return 1
        if args.webui:
            if not _wait_ready(f"{webui}/health", None, sup, 120):
                return 1
            web = f", web UI at {webui}"
        print(f"corral: ready - OpenAI API at {api}/v1 serving {', '.join(names)}{web}", flush=True)
        while not sup.dead():
            time.sleep(0.5)
        print(f"corral: a service stopped: {', '.join(sup.dead())}; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("corral: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sup.stop()


def _wait_ready(url: str, models: list[str] | None, sup: Supervisor, timeout: float) -> bool:
    """Poll `url` until it answers 200 (and, for /v1/models, lists every model)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if sup.dead():
                print(f"corral: failed to start: {', '.join(sup.dead())}", file=sys.stderr)
                return False
            try:
                r = client.get(url)
                if r.status_code == 200 and (
                    models is None or set(models) <= {m["id"] for m in r.json()["data"]}
                ):
                    return True
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
    print(f"corral: not ready after {timeout:.0f}s", file=sys.stderr)
    return False
