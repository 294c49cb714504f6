"""`corral keys create|list|revoke`: API keys kept (hashed) in the store the gateways use."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from openai_api.settings import GatewaySettings
from store import describe_store, open_keys


def add_subparser(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="manage API keys (stored hashed)")
    keys.add_argument(
        "--store-url",
        help="redis://... or sqlite:///path (default: the gateway's store: $CORRAL_API_STORE_URL, "
        "else $CORRAL_STORE_URL, else the embedded store under $CORRAL_HOME)",
    )
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", help="create a key and print its secret (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--model",
        dest="models",
        action="append",
        help="allow only this model (repeatable; default: every model)",
    )
    create.add_argument("--rpm", type=_positive, help="requests per minute")
    create.add_argument("--tpm", type=_positive, help="tokens (prompt + completion) per minute")
    create.set_defaults(func=_run, action=_create)

    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(func=_run, action=_list)

    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_run, action=_revoke)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run(args: argparse.Namespace) -> int:
    if args.store_url is None:  # the store the gateway reads, found the way the gateway does
        args.store_url = GatewaySettings().store_url
    code: int = asyncio.run(args.action(args))
    return code


async def _create(args: argparse.Namespace) -> int:
    store = open_keys(args.store_url)
    try:
        secret, record = await store.create(args.name, args.models, args.rpm, args.tpm)
    finally:
        await store.close()
    print(f"id:     {record.id}")
    print(f"secret: {secret}")
    print(f"store:  {describe_store(args.store_url)}")
    print("Keep the secret now: it is stored hashed and cannot be shown again.", file=sys.stderr)
    print(
        "Gateways check it only when they read this store and run with --require-keys.",
        file=sys.stderr,
    )
    return 0


async def _list(args: argparse.Namespace) -> int:
    store = open_keys(args.store_url)
    try:
        records = await store.list()
    finally:
        await store.close()
    if args.format == "json":
        fields = ("id", "name", "prefix", "models", "rpm", "tpm", "created_at", "revoked_at")
        print(json.dumps([{f: getattr(r, f) for f in fields} for r in records], indent=2))
        return 0
    print(f"{'id':<18} {'name':<20} {'prefix':<16} {'models':<24} {'rpm':>6} {'tpm':>8}  status")
    for r in records:
        status = "revoked " + _when(r.revoked_at) if r.revoked_at else "active"
        models = ",".join(r.models) if r.models else "*"
        print(
            f"{r.id:<18} {r.name[:20]:<20} {r.prefix + '...':<16} {models[:24]:<24} "
            f"{r.rpm or '-':>6} {r.tpm or '-':>8}  {status}"
        )
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    store = open_keys(args.store_url)
    try:
        found = await store.revoke(args.key_id)
    finally:
        await store.close()
    if not found:
        print(f"no key with id {args.key_id!r}", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
