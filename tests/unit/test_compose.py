"""docker-compose.yml and Dockerfile, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_expected_services_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "controller", "api", "webui"} <= set(services)
    cpu = [n for n, s in services.items() if "cpu" in s.get("profiles", [])]
    gpu = [n for n, s in services.items() if "gpu" in s.get("profiles", [])]
    assert len(cpu) == 2 and len(gpu) == 2  # two workers per profile


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_every_dependency_exists_and_waits_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert rule == {"condition": "service_healthy"}, f"{name} -> {target}"
            # a service every profile starts must not wait for a profile-only one
            if not service.get("profiles"):
                assert not services[target].get("profiles"), f"{name} -> {target}"


def test_every_command_is_a_real_corral_command(compose: dict[str, Any]) -> None:
    parser = build_parser()
    commands = [
        s["command"] for s in compose["services"].values() if s.get("command", [""])[0] == "corral"
    ]
    assert len(commands) == 7  # controller, 4 workers, api, webui
    for command in commands:
        args = parser.parse_args(command[1:])  # exits (SystemExit) on a bad subcommand or flag
        assert callable(args.func)


def test_redis_keeps_every_acknowledged_write(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["redis"]["command"]).split()
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


def test_redis_needs_a_password_that_is_not_on_a_command_line(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    script = redis["command"][-1]
    assert "requirepass" in script and "exec redis-server /tmp/auth.conf" in script
    assert "--requirepass" not in script
    assert "CORRAL_REDIS_PASSWORD:?" in redis["environment"]["CORRAL_REDIS_PASSWORD"]
    for name, service in compose["services"].items():
        if name != "redis":
            url = service["environment"]["CORRAL_STORE_URL"]
            assert url.startswith("redis://:${CORRAL_REDIS_PASSWORD:?"), name


def test_the_control_plane_has_a_secret_and_the_web_ui_does_not(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ("redis", "webui"):
            assert "CORRAL_CONTROL_SECRET" not in service.get("environment", {}), name
        else:
            secret = service["environment"]["CORRAL_CONTROL_SECRET"]
            assert secret.startswith("${CORRAL_CONTROL_SECRET:?"), name
        assert not [a for a in service.get("command", []) if "secret" in a.lower()], name


def test_only_the_gateway_and_the_web_ui_are_published_on_loopback(
    compose: dict[str, Any],
) -> None:
    published = {n: s["ports"] for n, s in compose["services"].items() if s.get("ports")}
    assert published == {
        "api": ["${CORRAL_PUBLISH_HOST:-127.0.0.1}:8000:8000"],
        "webui": ["${CORRAL_PUBLISH_HOST:-127.0.0.1}:7860:7860"],
    }


def test_only_workers_write_and_models_are_read_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        volumes = service.get("volumes", [])
        if name.startswith("worker"):
            assert "corral-models:/models:ro" in volumes, name
        elif name != "redis":
            assert volumes == [], name


def test_the_image_runs_as_an_unprivileged_user_and_its_command_gets_ready() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile
    assert dockerfile.index("USER 10001") < dockerfile.index("CMD ")
    assert 'CMD ["corral", "up", "--host", "0.0.0.0"]' in dockerfile
    assert "EXPOSE 8000 7860\n" in dockerfile


def test_gpu_workers_reserve_a_gpu(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "gpu" in service.get("profiles", []):
            devices = service["deploy"]["resources"]["reservations"]["devices"]
            assert devices[0]["capabilities"] == ["gpu"], name


def test_the_image_is_built_from_this_repository() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject, re.S)
    assert include is not None
    packages = [p.strip().strip('"').rstrip("*") for p in include.group(1).split(",") if p.strip()]
    for package in packages:
        if (ROOT / package).is_dir():
            assert f"COPY {package} {package}" in dockerfile, package
    assert 'pip install --no-cache-dir ".[$EXTRAS]"' in dockerfile  # this checkout, not PyPI


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not os.environ.get("CORRAL_REQUIRE_FIXTURES"),
    reason="docker-compose (v1, validates without an engine) is not installed",
)
@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_docker_compose_accepts_the_file(profile: str, tmp_path: Path) -> None:
    (tmp_path / "empty.env").touch()
    secrets = {"CORRAL_CONTROL_SECRET": "c" * 64, "CORRAL_REDIS_PASSWORD": "r" * 64}
    result = subprocess.run(
        [
            "docker-compose",
            "--env-file",
            str(tmp_path / "empty.env"),  # not a developer's .env
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--profile",
            profile,
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **secrets},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not os.environ.get("CORRAL_REQUIRE_FIXTURES"),
    reason="docker-compose (v1, validates without an engine) is not installed",
)
def test_docker_compose_refuses_to_run_without_the_secrets(tmp_path: Path) -> None:
    (tmp_path / "empty.env").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    result = subprocess.run(
        [
            "docker-compose",
            "--env-file",
            str(tmp_path / "empty.env"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0
    assert "set CORRAL_" in result.stderr
