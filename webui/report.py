"""The leaderboard as text (table, JSON, CSV) and as an SVG interval plot; pure functions.

The CLI and the web page print the same `Leaderboard`, so they show the same numbers.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable

from webui.leaderboard import Leaderboard, Row

COLUMNS = [
    "rank", "model", "rating", "lower", "upper", "style", "elo", "votes", "wins", "ties",
    "losses", "group",
]  # fmt: skip
HEADERS = [
    "Rank", "Model", "BT rating", "95% low", "95% high", "Style-controlled", "Elo", "Votes",
    "W", "T", "L", "Group",
]  # fmt: skip
CSV_COLUMNS = [*COLUMNS, "status"]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def table_rows(board: Leaderboard) -> list[list[str]]:
    """Ranked models first, by group and rank; then provisional ones, with their counts."""
    ranked = [
        [
            str(r.rank),
            r.model,
            f"{r.rating:.1f}",
            f"{r.lower:.1f}",
            f"{r.upper:.1f}",
            _num(r.style),
            f"{r.elo:.1f}",
            str(r.votes),
            str(r.wins),
            str(r.ties),
            str(r.losses),
            str(r.group),
        ]
        for r in board.rows
    ]
    provisional = [
        ["-", p.model, "provisional", *[""] * 4, *map(str, (p.votes, p.wins, p.ties, p.losses)), ""]
        for p in board.provisional
    ]
    return ranked + provisional


def summary(board: Leaderboard) -> str:
    c = board.counts
    return (
        f"Battles counted: {c.counted} of {c.stored} votes stored "
        f"({c.named} side-by-side, {c.identity} dropped because an answer revealed a model, "
        f"{c.duplicate} duplicate, {c.invalid} invalid); intervals from "
        f"{board.bootstrap_rounds} bootstrap rounds; ties count half a win each"
    )


def footnote(board: Leaderboard) -> str:
    """How to read the ratings: threshold, anchors, comparison groups, style control."""
    lines = [
        f"A model is ranked once it has {board.min_votes} counted battles; below that it is "
        "provisional (listed with its count, not ranked, and left out of everyone's rating).",
    ]
    if board.groups:
        anchors = ", ".join(f"{g.anchor} (group {g.number})" for g in board.groups)
        lines.append(
            f"Ratings are anchored: {anchors} is fixed at 1000 and the others are relative to "
            "it, so a newcomer cannot shift everyone by its own luck; the anchor's interval is "
            "zero by construction."
        )
    if len(board.groups) > 1:
        lines.append(
            f"WARNING: {len(board.groups)} comparison groups never met, not even through "
            "common opponents: ratings and ranks compare only within a group."
        )
    if board.style_coefficients:
        effects = ", ".join(f"{k} {v:+.1f}" for k, v in board.style_coefficients.items())
        lines.append(
            "Style-controlled: Bradley-Terry with answer length, headers, lists and bold as "
            f"covariates, so a model does not climb by writing longer (effects: {effects})."
        )
    return "\n".join(lines)


def as_table(board: Leaderboard) -> str:
    rows = [HEADERS, *table_rows(board)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(_align(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", summary(board), footnote(board)]) + "\n"


def _align(row: list[str], widths: list[int]) -> list[str]:
    """The model name left-aligned, numbers right-aligned."""
    pairs = enumerate(zip(row, widths, strict=True))
    return [c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in pairs]


def as_json(board: Leaderboard) -> str:
    return json.dumps(board.as_dict(), indent=2) + "\n"


def as_csv(board: Leaderboard) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in board.rows:
        values = [getattr(r, c) for c in COLUMNS]
        writer.writerow([*("" if v is None else v for v in values), "ranked"])
    for p in board.provisional:
        writer.writerow([getattr(p, c, "") for c in COLUMNS] + ["provisional"])
    return out.getvalue()


FORMATS: dict[str, Callable[[Leaderboard], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
}


def interval_svg(rows: list[Row], width: int = 640) -> str:
    """Each model's BT rating as a dot on its 95 % interval, best at the top."""
    if not rows:
        return "<p>No battles counted yet.</p>"
    row_h, left, right, top = 28, 170, 30, 30
    height = top + row_h * len(rows) + 30
    lo = min(r.lower for r in rows)
    hi = max(r.upper for r in rows)
    pad = max(10.0, (hi - lo) * 0.08)
    lo, hi = lo - pad, hi + pad

    def x(value: float) -> float:
        return left + (value - lo) / (hi - lo) * (width - left - right)

    parts = [
        # scales to the column (a phone's too), never wider than drawn
        f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" style="max-width:{width}px" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12">',
        "<title>Bradley-Terry ratings with 95% bootstrap intervals</title>",
        f'<text x="{left}" y="16">BT rating (95% bootstrap interval)</text>',
    ]
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        name = html.escape(f"{r.rank}. {r.model}" + (f" (g{r.group})" if r.group > 1 else ""))
        parts += [
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{name}</text>',
            f'<line x1="{x(r.lower):.1f}" y1="{y:.1f}" x2="{x(r.upper):.1f}" y2="{y:.1f}" '
            'stroke="#4a6fa5" stroke-width="3"/>',
            f'<circle cx="{x(r.rating):.1f}" cy="{y:.1f}" r="5" fill="#c0392b"/>',
        ]
    axis_y = top + row_h * len(rows) + 6
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#888"/>'
    )
    for tick in _ticks(lo, hi):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle">{round(tick)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    raw = (hi - lo) / count
    step = next(s for s in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 1e9) if s >= raw)
    first = -(-lo // step) * step
    ticks = []
    t = first
    while t <= hi:
        ticks.append(t)
        t += step
    return ticks
