"""What the arena stores: one record per vote ("votes"), per finished answer ("conversations")
and per like, dislike or report on an answer ("feedback").

Records are plain JSON. A vote carries both sides' whole conversations and what was decided
at vote time: the identity words its answers showed (the battle does not count if any) and
its style features (see webui.votes, which also keeps the vote's compact projection). Its id
is derived from the round, which takes one vote, so a retried write is recognised. Client
IPs are kept only as a salted HMAC, enough to tell that two votes came from one address, not
which address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

from webui import votes
from webui.arena import SIDES, Chat, Round, VoteKind
from webui.gateway import Sampling
from webui.identity import IdentityFilter

SCHEMA = 1
VOTES = "votes"
CONVERSATIONS = "conversations"
FEEDBACK = "feedback"
# What a user may say about one answer: thumbs in chat, a report (flag) anywhere.
FEEDBACK_KINDS = ("Like", "Dislike", "Report")


def hash_ip(salt: bytes, ip: str | None) -> str | None:
    if not ip:
        return None
    return hmac.new(salt, ip.encode(), hashlib.sha256).hexdigest()[:32]


def _mode(rnd: Round) -> str:
    return "battle" if rnd.anonymous else "side_by_side"


def vote_id(rnd: Round) -> str:
    """A round takes one vote: its id follows from the round's, so a retry has the same."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"corral:vote:{rnd.conversation_id}").hex


def vote_record(
    rnd: Round,
    winner: VoteKind,
    sampling: Sampling,
    ip_hash: str | None,
    now: float | None = None,
    identity: IdentityFilter | None = None,
) -> dict[str, Any]:
    record = {
        "schema": votes.SCHEMA,
        "vote_id": vote_id(rnd),
        "conversation_id": rnd.conversation_id,
        "mode": _mode(rnd),
        "anonymous": rnd.anonymous,
        "model_a": rnd.models[0],
        "model_b": rnd.models[1],
        "winner": winner,
        "turns": rnd.turns,
        "regenerations": rnd.regenerations,
        "sampling": sampling.as_dict(),
        "started_at": rnd.started_at,
        "voted_at": time.time() if now is None else now,
        "ip_hash": ip_hash,
        "conversation_a": [dict(m) for m in rnd.sides[0].messages],
        "conversation_b": [dict(m) for m in rnd.sides[1].messages],
    }
    record.update(votes.judge(record, identity or IdentityFilter([])))
    return record


def round_record(
    rnd: Round, sampling: Sampling, ip_hash: str | None, now: float | None = None
) -> dict[str, Any]:
    """Both sides of an arena round, after an answer (or a failure) finished."""
    return {
        "schema": SCHEMA,
        "conversation_id": rnd.conversation_id,
        "mode": _mode(rnd),
        "anonymous": rnd.anonymous,
        "turn": rnd.turns,
        "regenerations": rnd.regenerations,
        "sides": [
            {
                "side": SIDES[i],
                "model": side.model,
                "messages": [dict(m) for m in side.messages],
                "finish_reason": side.finish_reason,
                "error": side.error,
            }
            for i, side in enumerate(rnd.sides)
        ],
        "sampling": sampling.as_dict(),
        "started_at": rnd.started_at,
        "finished_at": time.time() if now is None else now,
        "ip_hash": ip_hash,
    }


def chat_record(
    chat: Chat, sampling: Sampling, ip_hash: str | None, now: float | None = None
) -> dict[str, Any]:
    side = chat.side
    return {
        "schema": SCHEMA,
        "conversation_id": chat.conversation_id,
        "mode": "chat",
        "anonymous": False,
        "turn": chat.turns,
        "sides": [
            {
                "side": None,
                "model": side.model,
                "messages": [dict(m) for m in side.messages],
                "finish_reason": side.finish_reason,
                "error": side.error,
            }
        ],
        "sampling": sampling.as_dict(),
        "started_at": chat.started_at,
        "finished_at": time.time() if now is None else now,
        "ip_hash": ip_hash,
    }


def feedback_record(
    conversation: Round | Chat,
    side: int,
    message: int,
    kind: str,
    ip_hash: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """A like, dislike or report on one answer (message index `message` of side `side`)."""
    if isinstance(conversation, Round):
        mode, model, label = _mode(conversation), conversation.models[side], SIDES[side]
        messages = conversation.sides[side].messages
    else:
        mode, model, label = "chat", conversation.model, None
        messages = conversation.side.messages
    return {
        "schema": SCHEMA,
        "feedback_id": uuid.uuid4().hex,
        "conversation_id": conversation.conversation_id,
        "mode": mode,
        "side": label,
        "model": model,
        "message_index": message,
        "message": dict(messages[message]) if 0 <= message < len(messages) else None,
        "feedback": kind,
        "at": time.time() if now is None else now,
        "ip_hash": ip_hash,
    }
