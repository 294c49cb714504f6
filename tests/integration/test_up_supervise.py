"""`corral up` as a supervisor: it stops on SIGINT and SIGTERM even when started with SIGINT
ignored (as a script's background job is), and it restarts a child that exits.

The tiny model with two workers and no web UI keeps each start to seconds.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Service, children_of, free_port, pid_alive

SECRET = "test-control-secret"
CHAT = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
# what `sh script &` does to a background job: SIGINT ignored, inherited across exec
IGNORING_SIGINT = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', sys.executable, "-m"]


def start_up(model: Path, logs: Path, *extra: str) -> tuple[Service, str, str]:
    api, controller = free_port(), free_port()
    up = Service(
        "corral-up",
        ["corral.cli", "up", "--model", str(model), "--backend", "hf", "--no-webui",
         "--api-port", str(api), "--controller-port", str(controller),
         "--worker-port", str(free_port()), *extra],
        logs,
        env={"CORRAL_CONTROL_SECRET": SECRET},
        program=IGNORING_SIGINT,
    ).start()  # fmt: skip
    deadline = time.monotonic() + 300
    while "corral: ready" not in up.log_path.read_text():
        assert up.alive() and time.monotonic() < deadline, up.log_tail()
        time.sleep(0.2)
    return up, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{controller}"


def worker_ids(controller: str) -> set[str]:
    auth = {"Authorization": f"Bearer {SECRET}"}
    reply = httpx.get(f"{controller}/internal/workers", headers=auth, timeout=5)
    reply.raise_for_status()
    return {w["registration"]["worker_id"] for w in reply.json()}


def stops_every_child(up: Service, sig: int) -> None:
    kids = children_of(up.pid)
    assert kids
    up.signal(sig)
    assert up.proc is not None and up.proc.wait(timeout=60) == 0, up.log_tail()
    deadline = time.monotonic() + 10
    while any(pid_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [k for k in kids if pid_alive(k)]


@pytest.fixture(scope="module")
def two_workers(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, str, str]]:
    up, api, controller = start_up(
        tiny_model_path, tmp_path_factory.mktemp("up-two"), "--workers", "2"
    )
    try:
        yield up, api, controller
    finally:
        up.stop()


def test_a_worker_that_exits_is_restarted_and_the_gateway_keeps_answering(
    two_workers: tuple[Service, str, str],
) -> None:
    up, api, controller = two_workers
    before = worker_ids(controller)
    assert len(before) == 2
    kids = children_of(up.pid)
    # children start in order: controller, worker #1, worker #2, api
    victim = kids[1]
    statuses: list[int | str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                try:
                    statuses.append(
                        client.post(f"{api}/v1/chat/completions", json=CHAT).status_code
                    )
                except httpx.HTTPError as exc:
                    statuses.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = worker_ids(controller)
            if len(now) == 2 and now != before:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the worker did not come back:\n{up.log_tail()}")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=90)
    assert statuses and [s for s in statuses if s != 200] == []
    assert len(before & worker_ids(controller)) == 1  # one survivor, one newcomer
    log = up.log_path.read_text()
    assert "exited (exit 0); restarting in 1s" in log
    assert "restarted (pid" in log
    assert up.alive()


def test_kill_int_stops_every_child_though_sigint_was_ignored(
    two_workers: tuple[Service, str, str],
) -> None:
    """Last test of the module: it stops the platform."""
    stops_every_child(two_workers[0], signal.SIGINT)


def test_host_0000_gets_ready_with_a_closed_control_plane_and_stops_on_term(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """The Dockerfile's command: ready, the gateway answers on every interface, the controller
    and the workers only on loopback and only to holders of the secret; SIGTERM stops it."""
    up, api, controller = start_up(tiny_model_path, tmp_path, "--host", "0.0.0.0")
    try:
        assert "tiny-llama" in httpx.get(f"{api}/v1/models", timeout=5).text
        r = httpx.get(f"{controller}/internal/workers", timeout=5)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_secret")
        assert len(worker_ids(controller)) == 1
        reply = httpx.post(f"{api}/v1/chat/completions", json=CHAT, timeout=60)
        assert reply.status_code == 200, reply.text
        stops_every_child(up, signal.SIGTERM)
    finally:
        up.stop()
