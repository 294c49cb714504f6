"""The arena leaderboard at scale (issue 15): 1M votes over 100 models.

Fills a SQLite store with simulated vote projections (known strengths, ties, style features,
some identity-flagged and side-by-side votes), then measures, through the web UI's own code:
- load: reading and absorbing every projected vote into a fresh `VoteTable` (once per process);
- recompute: the full board (BT MLE, 1000 bootstrap rounds, style control, online Elo);
- cached open: what the leaderboard tab does on a warm cache (`WebUI.leaderboard()` plus the
  table rows and the SVG plot), median of many opens;
- incremental: absorbing 1000 new votes, then recomputing;
- peak resident memory of the process.
Targets: cached open < 200 ms, recompute < 30 s, memory < 1 GB.

    .venv/bin/python bench/leaderboard_scale.py [--votes 1000000] [--models 100] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from store import open_events
from webui import leaderboard, report, votes
from webui.service import WebUI
from webui.settings import WebUISettings

WINNERS = np.array(["model_b", "tie", "model_a", "tie (bothbad)"])


def simulate(count: int, n: int, seed: int, prefix: str = "v") -> list[str]:
    """`count` projected votes as JSON: BT outcomes from known strengths, 10 % ties, 2 %
    identity-flagged, 3 % side-by-side."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(1000, 120, n)
    a = rng.integers(0, n, count)
    b = (a + rng.integers(1, n, count)) % n
    p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    outcome = np.where(rng.random(count) < p, 2, 0)
    outcome[rng.random(count) < 0.1] = 1
    outcome[rng.random(count) < 0.02] = 3
    length = rng.integers(50, 3000, (count, 2))
    extras = rng.integers(0, 6, (count, 2, 3))
    flagged = rng.random(count) < 0.02
    named = rng.random(count) < 0.03
    out = []
    for i in range(count):
        record: dict[str, Any] = {
            "schema": votes.SCHEMA,
            "vote_id": f"{prefix}{i}",
            "model_a": f"model-{a[i]:03d}",
            "model_b": f"model-{b[i]:03d}",
            "winner": str(WINNERS[outcome[i]]),
            "anonymous": not named[i],
            "identity": ["llama"] if flagged[i] else [],
            "style": [[int(length[i, s]), *map(int, extras[i, s])] for s in (0, 1)],
        }
        out.append(json.dumps(record))
    return out


def fill(db: Path, records: list[str], stream: str = votes.VOTE_INDEX) -> None:
    """Bulk insert straight into the store's table (the service path writes one at a time)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO events (stream, data) VALUES (?, ?)", ((stream, r) for r in records)
        )
    conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="corral-board-"))
    url = f"sqlite:///{workdir / 'votes.db'}"
    events = open_events(url)  # creates the schema
    t = time.perf_counter()
    fill(workdir / "votes.db", simulate(args.votes, args.models, args.seed))
    fill_s = time.perf_counter() - t
    print(f"stored {args.votes} projected votes in {fill_s:.1f} s", flush=True)

    settings = WebUISettings(
        store_url=url, bootstrap_rounds=args.rounds, leaderboard_refresh_s=3600, ip_hash_salt="b"
    )
    ui = WebUI(settings, gateway=None, events=events)  # type: ignore[arg-type]
    t = time.perf_counter()
    await ui.sync_votes()
    load_s = time.perf_counter() - t
    print(f"load: {load_s:.1f} s, peak RSS {peak_rss_mb():.0f} MB", flush=True)

    battles = ui.table.battles()
    options = leaderboard.Options.from_settings(settings)
    t = time.perf_counter()
    board = leaderboard.compute(battles, options)
    recompute_s = time.perf_counter() - t
    print(f"recompute ({args.rounds} rounds): {recompute_s:.1f} s", flush=True)

    await ui.leaderboard()  # the first open computes and fills the cache
    opens = []
    for _ in range(args.opens):
        t = time.perf_counter()
        cached = await ui.leaderboard()
        report.table_rows(cached)
        report.interval_svg(cached.rows)
        report.footnote(cached)
        opens.append(time.perf_counter() - t)

    fill(workdir / "votes.db", simulate(1000, args.models, args.seed + 1, prefix="new"))
    t = time.perf_counter()
    await ui.sync_votes()
    absorb_s = time.perf_counter() - t
    assert ui.table.counts.stored == args.votes + 1000
    await events.close()
    top = board.rows[0]
    return {
        "votes": args.votes,
        "models": args.models,
        "bootstrap_rounds": args.rounds,
        "counted": board.counts.counted,
        "ranked": len(board.rows),
        "load_s": round(load_s, 2),
        "recompute_s": round(recompute_s, 2),
        "cached_open_ms_p50": round(1000 * statistics.median(opens), 3),
        "cached_open_ms_max": round(1000 * max(opens), 3),
        "absorb_1000_new_votes_ms": round(1000 * absorb_s, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "anchor": board.groups[0].anchor,
        "top": f"{top.model} {top.rating} [{top.lower}, {top.upper}] style {top.style}",
        "targets_met": {
            "cached_open_lt_200ms": statistics.median(opens) < 0.2,
            "recompute_lt_30s": recompute_s < 30,
            "memory_lt_1gb": peak_rss_mb() < 1024,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--votes", type=int, default=1_000_000)
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--opens", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    print(json.dumps(asyncio.run(run(p.parse_args())), indent=2))


if __name__ == "__main__":
    main()
