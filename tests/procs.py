"""Real service processes on free loopback ports, for integration tests.

Each process logs to a file; waiting on a URL fails fast (with the log's tail) if the process
died; stopping terminates, then kills, and always reaps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


class Service:
    """`python -m ARGS...` by default; `program` runs something else (e.g. ["redis-server"])."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        program: list[str] | None = None,
    ):
        self.name = name
        self.args = args
        self.program = program if program is not None else [sys.executable, "-m"]
        self.log_path = log_dir / f"{name}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""  # base URL, set by whoever knows the port

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.program, *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_until(self, url: str, timeout: float, ok: object = None) -> httpx.Response:
        """Poll `url` until it answers 200 (and `ok(response)` when given)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited ({self.proc and self.proc.returncode}):\n{self.log_tail()}"
                )
            try:
                r = httpx.get(url, timeout=2.0)
                if r.status_code == 200 and (ok is None or ok(r)):  # type: ignore[operator]
                    return r
                last = r.status_code
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name}: {url} not ready in {timeout}s ({last}):\n{self.log_tail()}"
        )

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def children_of(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Platform:
    """Controllers, workers and gateways started together (see `start_platform`)."""

    controllers: list[Service] = field(default_factory=list)
    workers: list[Service] = field(default_factory=list)
    gateways: list[Service] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.gateways[0].url

    @property
    def controller(self) -> str:
        return self.controllers[0].url

    def stop(self) -> None:
        for group in (self.gateways, self.workers, self.controllers):
            for s in group:
                s.stop()


def start_platform(
    log_dir: Path,
    model: Path,
    *,
    controllers: int = 1,
    workers: int = 1,
    gateways: int = 1,
    store_url: str | None = None,
    worker_args: Sequence[str] = (),
    gateway_args: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    ready_timeout: float = 300,
) -> Platform:
    """A platform on loopback serving `model` as "tiny" (hf backend), ready when the first
    controller lists every worker. Each worker and gateway knows every controller, listed in
    a different order so that they do not all lean on the first one. `extra_args` go to
    every service (e.g. a log level); on failure everything started is stopped."""
    store = ["--store-url", store_url] if store_url else []
    platform = Platform()
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(controllers)]

    def rotated(i: int) -> list[str]:
        order = urls[i % controllers :] + urls[: i % controllers]
        return [arg for url in order for arg in ("--controller-url", url)]

    def start(group: list[Service], name: str, args: list[str], port: int) -> None:
        s = Service(name, [*args, "--port", str(port), *extra_args], log_dir)
        s.url = f"http://127.0.0.1:{port}"
        group.append(s.start())

    try:
        for i, url in enumerate(urls):
            start(
                platform.controllers,
                f"controller{i}",
                ["controller", *store],
                int(url.rsplit(":", 1)[1]),
            )
        for s in platform.controllers:
            s.wait_until(f"{s.url}/health", 60)
        for i in range(workers):
            start(
                platform.workers,
                f"worker{i}",
                [
                    "model_worker",
                    "--model-path",
                    str(model),
                    "--model-name",
                    "tiny",
                    "--backend",
                    "hf",
                    *rotated(i),
                    *worker_args,
                ],
                free_port(),
            )
        for i in range(gateways):
            start(
                platform.gateways,
                f"gateway{i}",
                ["openai_api", *rotated(i), *store, *gateway_args],
                free_port(),
            )
        for s in platform.gateways:
            s.wait_until(f"{s.url}/health", 60)
        first = platform.controllers[0]
        first.wait_until(
            f"{first.url}/internal/workers", ready_timeout, ok=lambda r: len(r.json()) == workers
        )
    except BaseException:
        platform.stop()
        raise
    return platform


@contextlib.contextmanager
def corral_up_smollm2(logs: Path, backend: str) -> Iterator[str]:
    """`corral up` on SmolLM2 with `backend`, no web UI; yields the API's base URL once the
    model is listed and the ready line is printed, and stops everything after."""
    api = free_port()
    up = Service(
        "corral-up",
        ["corral.cli", "up", "--model", "smollm2", "--backend", backend, "--no-webui",
         "--api-port", str(api), "--controller-port", str(free_port()),
         "--worker-port", str(free_port())],
        logs,
    ).start()  # fmt: skip
    try:
        up.wait_until(f"http://127.0.0.1:{api}/v1/models", 900, ok=lambda r: bool(r.json()["data"]))
        deadline = time.monotonic() + 120
        while "corral: ready" not in up.log_path.read_text():
            assert up.alive() and time.monotonic() < deadline, up.log_tail()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{api}/v1"
    finally:
        up.stop()
