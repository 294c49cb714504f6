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
import typing
from dataclasses import dataclass, field

import httpx

from model_worker.backends import LOCAL_BACKEND_CHOICES
from servekit.settings import LogLevel

PR_SET_PDEATHSIG = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a(
        "--model",
        dest="models",
        action="append",
        help="built-in name (smollm2), .gguf file or HF model dir; repeatable (default: smollm2)",
    )
    a("--backend", default="auto", choices=LOCAL_BACKEND_CHOICES, help="every worker's backend")
    a("--host", default="127.0.0.1")
    a("--api-port", type=int, default=8000)
    a("--controller-port", type=int, default=21001)
    a("--worker-port", type=int, default=21002, help="first worker port; others follow")
    a("--ready-timeout", type=float, default=900.0, help="seconds to wait for every model")
    a("--store-url", help="redis://host:port/db to keep state in Redis (default: embedded)")
    a("--webui-port", type=int, default=7860)
    a("--no-webui", dest="webui", action="store_false", help="do not start the web UI")
    a("--log-level", default="info", choices=typing.get_args(LogLevel), help="for every service")


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
    sup = Supervisor()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, argv in service_commands(args, models, names):
            sup.start(name, argv)
        print(
            f"corral: controller {_url(args, args.controller_port)}  "
            f"api {_url(args, args.api_port)}/v1  models {', '.join(names)}",
            flush=True,
        )
        return _serve(args, names, sup)
    except KeyboardInterrupt:
        print("corral: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sup.stop()


def _url(args: argparse.Namespace, port: int) -> str:
    return f"http://{args.host}:{port}"


def service_commands(
    args: argparse.Namespace, models: list[str], names: list[str]
) -> list[tuple[str, list[str]]]:
    """(name, `python -m` arguments) of each child: controller, one worker per model, the
    gateway and (unless --no-webui) the web UI."""
    controller, api = _url(args, args.controller_port), _url(args, args.api_port)
    common = ["--host", args.host, "--log-level", args.log_level]
    store = ["--store-url", args.store_url] if args.store_url else []
    controller_args = ["controller", *common, "--port", str(args.controller_port), *store]
    commands = [("controller", controller_args)]
    for i, (model, name) in enumerate(zip(models, names, strict=True)):
        worker = ["model_worker", *common, "--port", str(args.worker_port + i)]
        worker += ["--model-path", model, "--model-name", name, "--backend", args.backend]
        commands.append((f"worker {name}", [*worker, "--controller-url", controller]))
    gateway = ["openai_api", *common, "--port", str(args.api_port)]
    commands.append(("api", [*gateway, "--controller-url", controller, *store]))
    if args.webui:
        # Started now, not after the models: its imports take seconds and overlap the model
        # load; it waits for the gateway to list every model itself, as long as we do.
        webui = ["webui", *common, "--port", str(args.webui_port), "--api-url", f"{api}/v1"]
        webui += ["--startup-timeout", str(args.ready_timeout)]
        webui += [arg for name in names for arg in ("--wait-for-model", name)]
        commands.append(("webui", [*webui, *store]))
    return commands


def _serve(args: argparse.Namespace, names: list[str], sup: Supervisor) -> int:
    """Wait until every model is listed (and the web UI answers), say so, then watch the
    children: when one stops, everything stops."""
    api = _url(args, args.api_port)
    if not _wait_ready(f"{api}/v1/models", names, sup, args.ready_timeout):
        return 1
    web = ""
    if args.webui:
        webui = _url(args, args.webui_port)
        if not _wait_ready(f"{webui}/health", None, sup, 120):
            return 1
        web = f", web UI at {webui}"
    print(f"corral: ready - OpenAI API at {api}/v1 serving {', '.join(names)}{web}", flush=True)
    while not sup.dead():
        time.sleep(0.5)
    print(f"corral: a service stopped: {', '.join(sup.dead())}; stopping", file=sys.stderr)
    return 1


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
