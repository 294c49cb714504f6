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
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"


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
def test_docker_compose_accepts_the_file(profile: str) -> None:
    result = subprocess.run(
        [
            "docker-compose",
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
    )
    assert result.returncode == 0, result.stderr
