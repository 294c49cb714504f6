"""`corral up`: controller, workers for each model, the gateway and the web UI as children.

Prints the URLs and a ready line once `/v1/models` lists every model. Only the gateway and the
web UI listen on `--host`; the controller and the workers stay on loopback. The children share
a control secret (from `CORRAL_CONTROL_SECRET`, else generated at each start) passed in their
environment, never on a command line.

SIGINT and SIGTERM stop the children (SIGTERM, then SIGKILL after a grace period); the handlers
are installed explicitly, so a `corral up` started with SIGINT ignored (a background job of a
script) still stops on `kill -INT`. Each child also gets SIGTERM from the kernel if this process
dies without cleaning up, so nothing is orphaned. Once ready, a child that exits is restarted
after a backoff (1 s, doubling to 30 s while it keeps dying young), with a log line.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
import typing
from dataclasses import dataclass, field

import httpx

from model_worker.backends import BACKEND_CHOICES
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
    a("--backend", default="auto", choices=BACKEND_CHOICES, help="every worker's backend")
    a("--host", default="127.0.0.1", help="address the gateway and the web UI listen on")
    a("--api-port", type=int, default=8000)
    a("--controller-port", type=int, default=21001)
    a("--worker-port", type=int, default=21002, help="first worker port; others follow")
    a("--workers", type=int, default=1, help="workers per model (default: 1)")
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


LOOPBACK = "127.0.0.1"
SECRET_ENV = "CORRAL_CONTROL_SECRET"
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0  # a child that ran this long before exiting starts its backoff over


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    started: float
    failures: int = 0
    restart_at: float | None = None  # set while it waits to be restarted


@dataclass
class Supervisor:
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    clock: typing.Callable[[], float] = time.monotonic

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", *argv]
        preexec = _die_with_parent if os.name == "posix" else None
        return subprocess.Popen(cmd, env=self.env, preexec_fn=preexec)

    def start(self, name: str, argv: list[str]) -> None:
        self.children.append(Child(name, argv, self._spawn(argv), self.clock()))

    def dead(self) -> list[str]:
        return [f"{c.name} (exit {c.proc.returncode})" for c in self.children if _exited(c)]

    def restart_dead(self) -> None:
        """Schedule a restart for each child that exited, and restart those whose time came."""
        now = self.clock()
        for c in self.children:
            if c.restart_at is None and _exited(c):
                c.failures = 0 if now - c.started >= STABLE_AFTER else c.failures + 1
                delay = min(BACKOFF_MAX, 2.0 ** max(0, c.failures - 1))
                c.restart_at = now + delay
                print(
                    f"corral: {c.name} exited (exit {c.proc.returncode}); "
                    f"restarting in {delay:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
            elif c.restart_at is not None and now >= c.restart_at:
                c.proc, c.started, c.restart_at = self._spawn(c.argv), now, None
                print(f"corral: {c.name} restarted (pid {c.proc.pid})", file=sys.stderr, flush=True)

    def stop(self, grace: float = 15.0) -> None:
        for c in reversed(self.children):  # gateway first, controller last
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for c in self.children:
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()


def _exited(child: Child) -> bool:
    return child.proc.poll() is not None


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
    if args.workers < 1:
        print("corral up: --workers must be at least 1", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault(SECRET_ENV, secrets.token_urlsafe(32))  # by environment: argv is public
    sup = Supervisor(env=env)

    def on_signal(signum: int, _frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # one stop at a time
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Installed whatever we inherited: a script's background job starts with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        for name, argv in service_commands(args, models, names):
            sup.start(name, argv)
        print(
            f"corral: controller {_url(LOOPBACK, args.controller_port)}  "
            f"api {_url(args.host, args.api_port)}/v1  models {', '.join(names)}",
            flush=True,
        )
        return _serve(args, names, sup)
    except KeyboardInterrupt:
        print("corral: stopping", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        sup.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _url(host: str, port: int) -> str:
    """A URL to reach `host`: a wildcard address is reached on loopback."""
    if host in ("0.0.0.0", "::", ""):
        host = LOOPBACK
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def service_commands(
    args: argparse.Namespace, models: list[str], names: list[str]
) -> list[tuple[str, list[str]]]:
    """(name, `python -m` arguments) of each child: controller, `--workers` workers per model,
    the gateway and (unless --no-webui) the web UI. The controller and the workers listen on
    loopback only; the gateway and the web UI on `--host`. No secret is on these lines."""
    controller, api = _url(LOOPBACK, args.controller_port), _url(args.host, args.api_port)
    log = ["--log-level", args.log_level]
    common = ["--host", args.host, *log]
    store = ["--store-url", args.store_url] if args.store_url else []
    controller_args = ["controller", "--host", LOOPBACK, *log, "--port", str(args.controller_port)]
    commands = [("controller", [*controller_args, *store])]
    port = args.worker_port
    for model, name in zip(models, names, strict=True):
        for i in range(args.workers):
            worker = ["model_worker", "--host", LOOPBACK, *log, "--port", str(port)]
            worker += ["--model-path", model, "--model-name", name, "--backend", args.backend]
            label = f"worker {name}" + (f" #{i + 1}" if args.workers > 1 else "")
            commands.append((label, [*worker, "--controller-url", controller]))
            port += 1
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
    children: one that stops is restarted (a child that dies before ready fails the start)."""
    api = _url(args.host, args.api_port)
    if not _wait_ready(f"{api}/v1/models", names, sup, args.ready_timeout):
        return 1
    web = ""
    if args.webui:
        webui = _url(args.host, args.webui_port)
        if not _wait_ready(f"{webui}/health", None, sup, 120):
            return 1
        web = f", web UI at {webui}"
    print(f"corral: ready - OpenAI API at {api}/v1 serving {', '.join(names)}{web}", flush=True)
    while True:
        sup.restart_dead()
        time.sleep(0.5)


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
