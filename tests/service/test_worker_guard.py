"""Who may call a worker (model_worker/routes.py): with a control secret, only its holders
(the gateways) reach the OpenAI and /internal endpoints, unless `--public` opens the OpenAI ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import serve, worker_app

SECRET = {"Authorization": "Bearer s3cret"}
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.mark.parametrize("public", [False, True])
async def test_the_worker_answers_holders_of_the_secret(
    tiny_model_path: Path, public: bool
) -> None:
    app = worker_app(tiny_model_path, control_secret="s3cret", public=public)
    async with serve(app) as w:
        r = await w.post("/v1/chat/completions", json=CHAT)
        if public:
            assert r.status_code == 200
        else:
            assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_secret")
            assert (await w.get("/v1/models")).status_code == 401
            r = await w.post("/v1/chat/completions", json=CHAT, headers=SECRET)
            assert r.status_code == 200
        # the control endpoints need the secret either way; liveness stays open
        assert (await w.get("/internal/status")).status_code == 401
        assert (await w.get("/internal/status", headers=SECRET)).status_code == 200
        assert (await w.get("/health")).status_code == 200
        r = await w.post("/v1/chat/completions", json=CHAT, headers={"Host": "rebound.example"})
        assert r.status_code == 421
