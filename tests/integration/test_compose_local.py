"""docker-compose.yml run without a container engine: each service of the cpu profile is
started as a local process with the command and environment the file gives it, in the order
of `depends_on`, and must pass its own healthcheck; then the platform must serve a request.

What differs from a real `docker compose up`, and only this: host names and ports (every
`name:port` becomes a free loopback port), CORRAL_HOME (a temporary directory), `corral`
(this checkout's `python -m corral.cli`), Redis's data directory, and the workers' model (the
tiny test model on the hf backend instead of SmolLM2, to keep the test short).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from procs import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"CORRAL_CONTROL_SECRET": "c0ntrol" * 6, "CORRAL_REDIS_PASSWORD": "redisp4ss" * 4}
ORDER = ["redis", "controller", "worker-1", "worker-2", "api", "webui"]  # the cpu profile
CONTAINER_PORT = {"redis": 6379, "controller": 21001, "worker-1": 21002, "worker-2": 21002,
                  "api": 8000, "webui": 7860}  # fmt: skip


def interpolate(text: str) -> str:
    """Compose's `${VAR:?message}`, `${VAR:-default}` and `$$`, with SECRETS as the .env."""

    def one(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in SECRETS:
            return SECRETS[name]
        assert op != ":?", f"{name} is required"
        return rest if op == ":-" else ""

    text = re.sub(r"\$\{(\w+)(:\?|:-)?([^}]*)\}", one, text)
    return text.replace("$$", "$")


class Localizer:
    def __init__(self) -> None:
        self.port = {name: free_port() for name in ORDER}

    def __call__(self, text: str, service: str) -> str:
        for name in ORDER:  # another container by name
            text = text.replace(f"{name}:{CONTAINER_PORT[name]}", f"127.0.0.1:{self.port[name]}")
        # the container's own loopback (healthchecks)
        return text.replace(
            f"127.0.0.1:{CONTAINER_PORT[service]}", f"127.0.0.1:{self.port[service]}"
        )


def command_of(
    name: str, service: dict[str, Any], local: Localizer, model: Path, data: Path
) -> list[str]:
    argv = [local(interpolate(a), name) for a in service["command"]]
    if name == "redis":
        script = argv[-1].replace(
            "--port 6379", f"--port {local.port['redis']} --bind 127.0.0.1 --dir {data}"
        )
        return [*argv[:-1], script.replace("/tmp/auth.conf", str(data / "auth.conf"))]
    assert argv[0] == "corral"
    out = [sys.executable, "-m", "corral.cli"]
    args = iter(argv[1:])
    for arg in args:
        out.append(arg)
        if arg == "--port":
            out.append(str(local.port[name]))
            next(args)
        elif arg == "--allowed-worker-host":
            host = next(args)
            out.append("127.0.0.1" if host in ORDER else host)
        elif arg == "--model-path":
            next(args)
            out.append(str(model))
        elif arg == "--backend":
            next(args)
            out.append("hf")
    return out


def healthy(name: str, service: dict[str, Any], local: Localizer, env: dict[str, str]) -> bool:
    test = service["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        script = interpolate(test[1]).replace("-p 6379", f"-p {local.port[name]}")
        argv = ["sh", "-c", script]
    else:
        assert test[0] == "CMD" and test[1] == "curl", test
        argv = [local(a, name) for a in test[1:]]
    done = subprocess.run(argv, env=env, capture_output=True, timeout=10)
    return done.returncode == 0


@pytest.fixture(scope="module")
def compose_platform(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Localizer, dict[str, Service]]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    logs = tmp_path_factory.mktemp("compose")
    local = Localizer()
    started: dict[str, Service] = {}
    try:
        for name in ORDER:
            service = compose["services"][name]
            data = tmp_path_factory.mktemp(name)
            env = {k: local(interpolate(str(v)), name) for k, v in service["environment"].items()}
            env["CORRAL_HOME"] = str(data)
            argv = command_of(name, service, local, tiny_model_path, data)
            proc = Service(name, argv[1:], logs, env=env, program=argv[:1]).start()
            started[name] = proc
            deadline = time.monotonic() + 240
            while not healthy(name, service, local, {**os.environ, **env}):
                assert proc.alive(), f"{name} exited:\n{proc.log_tail()}"
                assert time.monotonic() < deadline, f"{name} never healthy:\n{proc.log_tail()}"
                time.sleep(0.5)
        yield local, started
    finally:
        for name in reversed(list(started)):
            started[name].stop()


def test_every_service_passes_its_healthcheck_and_the_api_serves(
    compose_platform: tuple[Localizer, dict[str, Service]],
) -> None:
    local, _ = compose_platform
    api = f"http://127.0.0.1:{local.port['api']}"
    deadline = time.monotonic() + 60
    while [m["id"] for m in httpx.get(f"{api}/v1/models").json()["data"]] != ["tiny-llama"]:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    chat = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    assert httpx.post(f"{api}/v1/chat/completions", json=chat, timeout=60).status_code == 200
    # both workers registered; the control plane and the workers want the secret
    ctl = f"http://127.0.0.1:{local.port['controller']}"
    assert httpx.get(f"{ctl}/internal/workers").status_code == 401
    auth = {"Authorization": f"Bearer {SECRETS['CORRAL_CONTROL_SECRET']}"}
    assert len(httpx.get(f"{ctl}/internal/workers", headers=auth).json()) == 2
    worker = f"http://127.0.0.1:{local.port['worker-1']}"
    assert httpx.post(f"{worker}/v1/chat/completions", json=chat).status_code == 401
    webui = f"http://127.0.0.1:{local.port['webui']}"
    assert httpx.get(f"{webui}/health").status_code == 200


def test_redis_refuses_clients_without_the_password(
    compose_platform: tuple[Localizer, dict[str, Service]],
) -> None:
    import redis

    local, _ = compose_platform
    anonymous = redis.Redis(port=local.port["redis"], socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()
