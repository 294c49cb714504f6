"""`corral keys create|list|revoke` (openai_api/keys_cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    code, out, err = run(
        capsys,
        "keys",
        "--store-url",
        url,
        "create",
        "--name",
        "ci",
        "--model",
        "tiny",
        "--rpm",
        "10",
        "--tpm",
        "1000",
    )
    assert code == 0
    key_id = out.split("id:")[1].split()[0]
    secret = out.split("secret:")[1].split()[0]
    assert secret.startswith("sk-corral-") and "cannot be shown again" in err
    # the store it wrote to, so nobody mints a key in a store no gateway reads
    assert f"store:  embedded SQLite at {tmp_path / 'k.db'}" in out
    assert "--require-keys" in err
    code, out, _ = run(capsys, "keys", "--store-url", url, "list", "--format", "json")
    (listed,) = json.loads(out)
    assert (listed["id"], listed["models"], listed["rpm"], listed["tpm"]) == (
        key_id,
        ["tiny"],
        10,
        1000,
    )
    assert secret not in out
    code, out, _ = run(capsys, "keys", "--store-url", url, "list")
    assert key_id in out and "active" in out
    assert run(capsys, "keys", "--store-url", url, "revoke", key_id)[0] == 0
    code, out, _ = run(capsys, "keys", "--store-url", url, "list")
    assert "revoked" in out


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    code, _, err = run(capsys, "keys", "--store-url", url, "revoke", "key_nope")
    assert code == 2 and "no key" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", "--store-url", url, "create", "--name", "x", "--rpm", "0"])
    assert exit_info.value.code == 2


def test_create_names_a_redis_store_without_its_password(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = redis_url.replace("redis://", "redis://:pw@") if "@" not in redis_url else redis_url
    from store import describe_store

    described = describe_store(url)
    assert described.startswith("redis at redis://127.0.0.1:") and "pw" not in described
    code, out, _ = run(capsys, "keys", "--store-url", redis_url, "create", "--name", "ci")
    assert code == 0 and "store:  redis at redis://" in out
