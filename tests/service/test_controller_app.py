"""The controller's HTTP surface (controller/app.py, routes.py, service.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from harness import serve

from controller.app import create_app
from controller.settings import ControllerSettings


def url_of(worker_id: str) -> str:
    return f"http://127.0.0.1:{9000 + sum(map(ord, worker_id))}"


def reg(worker_id: str, models: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "url": url_of(worker_id),
        "models": models,
        "capacity": 1,
        **kw,
    }


@pytest.fixture
async def controller() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(ControllerSettings())) as client:
        yield client


async def dispatch(c: httpx.AsyncClient, model: str, **kw: Any) -> httpx.Response:
    return await c.post("/internal/dispatch", json={"model": model, **kw})


async def test_register_then_dispatch_and_release(controller: httpx.AsyncClient) -> None:
    assert (await controller.post("/internal/register", json=reg("w1", ["m"]))).status_code == 200
    r = await dispatch(controller, "m")
    assert r.json() == {"worker_id": "w1", "url": url_of("w1")}
    (status,) = (await controller.get("/internal/workers")).json()
    assert status["in_flight"] == 1 and status["dispatched_total"] == 1
    await controller.post("/internal/release", json={"worker_ids": ["w1"]})
    (status,) = (await controller.get("/internal/workers")).json()
    assert status["in_flight"] == 0


async def test_shortest_queue_spreads_concurrent_dispatches(controller: httpx.AsyncClient) -> None:
    for w in ("a", "b"):
        await controller.post("/internal/register", json=reg(w, ["m"]))
    picks = Counter([(await dispatch(controller, "m")).json()["worker_id"] for _ in range(10)])
    assert picks == {"a": 5, "b": 5}  # nothing released: each dispatch goes to the shorter queue


async def test_heartbeat_corrects_in_flight(controller: httpx.AsyncClient) -> None:
    await controller.post("/internal/register", json=reg("w1", ["m"]))
    for _ in range(3):
        await dispatch(controller, "m")
    r = await controller.post("/internal/heartbeat", json={"worker_id": "w1", "in_flight": 1})
    assert r.json() == {"known": True}
    (status,) = (await controller.get("/internal/workers")).json()
    assert status["in_flight"] == 1


async def test_unknown_worker_heartbeat_asks_to_register(controller: httpx.AsyncClient) -> None:
    r = await controller.post("/internal/heartbeat", json={"worker_id": "ghost", "in_flight": 0})
    assert r.json() == {"known": False}


async def test_unknown_model_is_404_and_lists_the_available(
    controller: httpx.AsyncClient,
) -> None:
    await controller.post("/internal/register", json=reg("w1", ["m"]))
    r = await dispatch(controller, "nope")
    assert r.status_code == 404
    err = r.json()["error"]
    assert (err["code"], err["param"]) == ("model_not_found", "model")
    assert "m" in err["message"]


async def test_known_model_without_live_worker_is_503(controller: httpx.AsyncClient) -> None:
    await controller.post("/internal/register", json=reg("w1", ["m"]))
    await controller.post("/internal/deregister", json={"worker_id": "w1"})
    r = await dispatch(controller, "m")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_worker_available"


async def test_unhealthy_and_excluded_workers_are_skipped(controller: httpx.AsyncClient) -> None:
    for w in ("a", "b"):
        await controller.post("/internal/register", json=reg(w, ["m"]))
    await controller.post(
        "/internal/heartbeat", json={"worker_id": "a", "in_flight": 0, "healthy": False}
    )
    assert {(await dispatch(controller, "m")).json()["worker_id"] for _ in range(4)} == {"b"}
    r = await dispatch(controller, "m", exclude=["b"])
    assert r.status_code == 503


async def test_endpoint_capability_is_respected(controller: httpx.AsyncClient) -> None:
    await controller.post("/internal/register", json=reg("w1", ["m"], capabilities=["chat"]))
    r = await dispatch(controller, "m", endpoint="embeddings")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_endpoint"


async def test_models_aggregate_workers(controller: httpx.AsyncClient) -> None:
    await controller.post("/internal/register", json=reg("w1", ["m", "n"], context_length=4096))
    await controller.post("/internal/register", json=reg("w2", ["m"], context_length=2048))
    await controller.post("/internal/register", json=reg("w3", ["o"]))
    models = (await controller.get("/internal/models")).json()["models"]
    assert [(m["id"], m["workers"], m["capacity"], m["context_length"]) for m in models] == [
        ("m", 2, 2, 2048),  # the smallest: a request must fit whichever worker gets it
        ("n", 1, 1, 4096),
        ("o", 1, 1, None),
    ]
    assert (await controller.post("/list_models")).json() == {"models": ["m", "n", "o"]}
    addr = (await controller.post("/get_worker_address", json={"model": "n"})).json()
    assert addr == {"address": url_of("w1")}


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://10.0.0.8:80", 403),
        ("http://169.254.169.254:80/", 403),
        ("file:///etc/passwd", 400),
        ("not a url", 400),
        # scheme://host:port and nothing else: no path, query, user or missing port
        ("http://127.0.0.1:9/admin", 400),
        ("http://127.0.0.1:9?x=1", 400),
        ("http://127.0.0.1:9#f", 400),
        ("http://user:pw@127.0.0.1:9", 400),
        ("http://127.0.0.1", 400),
        ("http://127.0.0.1:99999", 400),
    ],
)
async def test_worker_url_must_be_an_allowed_host(
    controller: httpx.AsyncClient, url: str, status: int
) -> None:
    r = await controller.post("/internal/register", json={**reg("w1", ["m"]), "url": url})
    assert r.status_code == status
    assert r.json()["error"]["param"] == "url"
    assert (await controller.get("/internal/workers")).json() == []


async def test_bad_registration_is_400(controller: httpx.AsyncClient) -> None:
    r = await controller.post("/internal/register", json={**reg("w1", []), "capacity": 0})
    assert r.status_code == 400
    assert r.json()["error"]["param"] in ("models", "capacity")


async def test_control_secret_is_required_when_set() -> None:
    app = create_app(ControllerSettings(control_secret="s3cret"))
    async with serve(app) as c:
        r = await c.post("/internal/register", json=reg("w1", ["m"]))
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
        ok = await c.post(
            "/internal/register", json=reg("w1", ["m"]), headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
        assert (await c.get("/health")).status_code == 200  # health stays open


async def test_a_bad_url_in_the_registry_is_not_dispatched_to() -> None:
    """A record that did not come through /internal/register (a shared store written by
    someone else) is checked again at dispatch."""
    from protocol.control import WorkerRegistration
    from store.memory import MemoryRegistry

    registry = MemoryRegistry(ttl=60)
    await registry.register(WorkerRegistration(**reg("evil", ["m"], url="http://127.0.0.1:9/x")))
    await registry.register(WorkerRegistration(**reg("far", ["m"], url="http://10.1.1.1:9")))
    async with serve(create_app(ControllerSettings(), registry=registry)) as c:
        r = await dispatch(c, "m")
        assert r.status_code == 503
        await registry.register(WorkerRegistration(**reg("good", ["m"])))
        assert (await dispatch(c, "m")).json()["worker_id"] == "good"


async def test_host_header_and_content_type_are_checked() -> None:
    """DNS rebinding (a hostile name resolved to 127.0.0.1) gets 421; a cross-site simple
    POST (text/plain, form) gets 415; loopback names and allowed hosts pass."""
    app = create_app(ControllerSettings(allowed_hosts=["ctl.internal"]))
    async with serve(app) as c:
        r = await c.get("/health", headers={"Host": "evil.example"})
        assert (r.status_code, r.json()["error"]["code"]) == (421, "host_not_allowed")
        for host in ("127.0.0.1:21001", "localhost", "[::1]:21001", "ctl.internal:21001"):
            assert (await c.get("/health", headers={"Host": host})).status_code == 200, host
        body = b'{"model": "m"}'
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            r = await c.post("/internal/dispatch", content=body, headers={"Content-Type": media})
            assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
        r = await c.post("/internal/dispatch", content=body)  # no content type at all
        assert r.status_code == 415
        r = await c.post("/list_models")  # no body at all (FastChat's clients)
        assert r.status_code == 200
        r = await c.post(
            "/internal/dispatch",
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 404  # past the guard: no such model


async def test_a_wildcard_listener_answers_any_host_unless_told() -> None:
    async with serve(create_app(ControllerSettings(host="0.0.0.0"))) as c:
        assert (await c.get("/health", headers={"Host": "anything"})).status_code == 200
    app = create_app(ControllerSettings(host="0.0.0.0", allowed_hosts=["ctl"]))
    async with serve(app) as c:
        assert (await c.get("/health", headers={"Host": "anything"})).status_code == 421


async def test_a_departed_workers_series_leave_the_metrics(controller: httpx.AsyncClient) -> None:
    """L9: worker ids are new at every start; their dispatch series must not pile up."""
    for w in ("w1", "w2"):
        await controller.post("/internal/register", json=reg(w, ["m"]))
        await dispatch(controller, "m", exclude=["w2" if w == "w1" else "w1"])
    text = (await controller.get("/metrics")).text
    assert 'worker="w1"' in text and 'worker="w2"' in text
    await controller.post("/internal/deregister", json={"worker_id": "w1"})
    text = (await controller.get("/metrics")).text
    assert 'worker="w1"' not in text
    assert (
        'corral_controller_dispatches_total{model="m",policy="shortest_queue",worker="w2"}' in text
    )
