"""The rules of one browser session's conversations, as pure state machines (no I/O).

A `Round` is one arena conversation between two sides, A and B: every prompt goes to both,
both answers stream at once, and the round ends with a vote. Its phases:

    EMPTY --submit--> GENERATING --both finished or stopped--> READY --submit/regenerate-->
                                  --a side failed--> FAILED --regenerate, or submit (the failed
                                                              turn is dropped)--> GENERATING
    READY --begin_vote--> VOTING --commit_vote--> VOTED       (names revealed, input closed)
                                 --abort_vote---> READY       (the store refused: try again)

A failed turn never ends the round: it can be regenerated, or replaced by a new message, and
the round can be voted on once its last turn has answered on both sides.
Every refused action raises `Refused` with the message the user sees. A battle's model
names stay hidden until the vote is stored; a side-by-side round names them from the start.
`Chat` is the one-model conversation of the chat tab.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

SIDES = ("A", "B")
STOPPED = "stopped"  # the finish reason of an answer the user stopped

# The spellings LMSYS uses in its vote logs, so tools written for them read ours.
VoteKind = Literal["model_a", "model_b", "tie", "tie (bothbad)"]
VOTE_LABELS: dict[VoteKind, str] = {
    "model_a": "A is better",
    "model_b": "B is better",
    "tie": "Tie",
    "tie (bothbad)": "Both are bad",
}


class Refused(Exception):
    """The action is not allowed now; str(exc) says why, in words for the user."""


# Fenced code blocks and inline code spans: markdown shows them as written, so they are left
# alone; everything else is escaped so that tags show as typed and nothing is fetched.
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)


def as_written(text: str) -> str:
    """Markdown that shows `text` as written: `<div>` stays `<div>` (not a tag, not dropped)
    and an image (`![...](url)`) stays text, so model output cannot make the browser fetch
    anything; code and the rest of markdown still render."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside code
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace("![", "!\\[")
    return "".join(parts)


class Phase(StrEnum):
    EMPTY = "empty"
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"
    VOTING = "voting"
    VOTED = "voted"


@dataclass(frozen=True)
class Limits:
    max_input_chars: int
    max_turns: int


Message = dict[str, str]


@dataclass
class Side:
    """One model's view of the conversation; the last assistant message may be partial."""

    model: str
    messages: list[Message] = field(default_factory=list)
    done: bool = True
    finish_reason: str | None = None
    error: str | None = None
    started_at: float = 0.0  # time.monotonic() when the answer being shown was asked for

    def start_answer(self) -> None:
        self.messages.append({"role": "assistant", "content": ""})
        self.done, self.finish_reason, self.error = False, None, None
        self.started_at = time.monotonic()

    def history(self) -> list[Message]:
        """What is sent to the model: everything before the answer being generated."""
        if self.messages and self.messages[-1]["role"] == "assistant" and not self.done:
            return [dict(m) for m in self.messages[:-1]]
        return [dict(m) for m in self.messages]

    def display(self, now: float | None = None) -> list[Message]:
        """The messages as the page shows them: text as written, a placeholder while the
        answer has not started, and a note when it was cut off, stopped or failed."""
        shown = [{**m, "content": as_written(m["content"])} for m in self.messages]
        if not shown or shown[-1]["role"] != "assistant":
            return shown
        last = shown[-1]
        note = ""
        if self.error:
            note = f"**Error:** {as_written(self.error)}"
        elif not self.done and not last["content"]:
            waited = int((time.monotonic() if now is None else now) - self.started_at)
            note = f"*Thinking... {waited} s*"
        elif self.finish_reason == "length":
            note = "*(cut off: the answer reached its length limit)*"
        elif self.finish_reason == STOPPED:
            note = "*(stopped)*"
        if note:
            last["content"] = f"{last['content']}\n\n{note}".strip()
        return shown


def check_prompt(prompt: str, turns: int, limits: Limits) -> str:
    """The prompt, stripped, or Refused when it is empty, too long or one turn too many."""
    text = prompt.strip()
    if not text:
        raise Refused("Type a message first.")
    if len(text) > limits.max_input_chars:
        raise Refused(
            f"Your message has {len(text)} characters; the limit is {limits.max_input_chars}. "
            "Please shorten it."
        )
    if turns >= limits.max_turns:
        raise Refused(
            f"This conversation reached its limit of {limits.max_turns} turns: start a new one."
        )
    return text


@dataclass
class Round:
    models: tuple[str, str]
    anonymous: bool
    limits: Limits
    conversation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    phase: Phase = Phase.EMPTY
    sides: list[Side] = field(default_factory=list)
    regenerations: int = 0
    vote: VoteKind | None = None
    voted_at: float | None = None
    _pending: VoteKind | None = None

    def __post_init__(self) -> None:
        if self.models[0] == self.models[1]:
            raise ValueError("a round needs two different models")
        if not self.sides:
            self.sides = [Side(m) for m in self.models]

    @property
    def turns(self) -> int:
        return sum(1 for m in self.sides[0].messages if m["role"] == "user")

    @property
    def revealed(self) -> bool:
        return not self.anonymous or self.phase is Phase.VOTED

    @property
    def kept_turns(self) -> int:
        """Turns that count against the limit: a failed last turn is replaced when resent."""
        return self.turns - (1 if self.phase is Phase.FAILED else 0)

    @property
    def last_prompt(self) -> str:
        users = [m["content"] for m in self.sides[0].messages if m["role"] == "user"]
        return users[-1] if users else ""

    @property
    def can_send(self) -> bool:
        open_ = self.phase in (Phase.EMPTY, Phase.READY, Phase.FAILED)
        return open_ and self.kept_turns < self.limits.max_turns

    @property
    def can_vote(self) -> bool:
        return self.phase is Phase.READY

    @property
    def can_regenerate(self) -> bool:
        return self.phase in (Phase.READY, Phase.FAILED)

    def label(self, i: int) -> str:
        name = f"Model {SIDES[i]}"
        return f"{name}: {self.models[i]}" if self.revealed else name

    def redact(self, text: str) -> str:
        """Hide model names (in error messages, say) while the round is anonymous."""
        if self.revealed:
            return text
        for i, model in enumerate(self.models):
            text = text.replace(model, f"Model {SIDES[i]}")
        return text

    # transitions -------------------------------------------------------------------------

    def _refuse_unless_open(self, action: str) -> None:
        if self.phase is Phase.GENERATING:
            raise Refused(f"Wait until both answers have finished before you {action}.")
        if self.phase is Phase.VOTING:
            raise Refused("Your vote is being saved.")
        if self.phase is Phase.VOTED:
            raise Refused("You voted, so this round is over: start a new round.")

    def check_submit(self, prompt: str) -> str:
        """The prompt as it would be sent, or Refused; changes nothing."""
        self._refuse_unless_open("send another message")
        return check_prompt(prompt, self.kept_turns, self.limits)

    def submit(self, prompt: str) -> str:
        text = self.check_submit(prompt)
        failed = self.phase is Phase.FAILED
        for side in self.sides:
            if failed:  # the failed exchange is dropped on both sides, not sent again
                del side.messages[-2:]
                side.error = None
            side.messages.append({"role": "user", "content": text})
            side.start_answer()
        self.phase = Phase.GENERATING
        return text

    def check_regenerate(self) -> None:
        self._refuse_unless_open("regenerate")
        if self.phase is Phase.EMPTY:
            raise Refused("There is no answer to regenerate yet.")

    def regenerate(self) -> None:
        self.check_regenerate()
        for side in self.sides:
            side.messages.pop()
            side.start_answer()
        self.regenerations += 1
        self.phase = Phase.GENERATING

    def add_text(self, i: int, text: str) -> None:
        side = self.sides[i]
        if self.phase is Phase.GENERATING and not side.done:
            side.messages[-1]["content"] += text

    def finish(self, i: int, reason: str) -> None:
        side = self.sides[i]
        if not side.done:
            side.done, side.finish_reason = True, reason
            self._settle()

    def fail(self, i: int, message: str) -> None:
        side = self.sides[i]
        if not side.done:
            side.done, side.error = True, message
            self._settle()

    def interrupt(self) -> None:
        """The generation stopped without finishing (the page went away): fail what was open."""
        for i, side in enumerate(self.sides):
            if not side.done:
                self.fail(i, "the answer was interrupted")

    def stop(self) -> None:
        """The user stopped the answers: what was written so far stands, as if finished."""
        for i, side in enumerate(self.sides):
            if not side.done:
                self.finish(i, STOPPED)

    def _settle(self) -> None:
        if all(s.done for s in self.sides):
            failed = any(s.error for s in self.sides)
            self.phase = Phase.FAILED if failed else Phase.READY

    def begin_vote(self, kind: VoteKind) -> None:
        if kind not in VOTE_LABELS:
            raise Refused(f"Unknown vote {kind!r}.")
        if self.phase is Phase.EMPTY:
            raise Refused("Send a prompt first: there is nothing to vote on yet.")
        if self.phase is Phase.VOTED:
            raise Refused("You already voted in this round: start a new round.")
        if self.phase is Phase.FAILED:
            raise Refused(
                "The last turn failed, so there is nothing complete to vote on: press "
                "Regenerate, or send your message again."
            )
        self._refuse_unless_open("vote")
        self.phase, self._pending = Phase.VOTING, kind

    def commit_vote(self, at: float | None = None) -> VoteKind:
        """The vote is stored: close the round and reveal the names."""
        assert self.phase is Phase.VOTING and self._pending is not None
        self.vote, self.voted_at = self._pending, time.time() if at is None else at
        self.phase, self._pending = Phase.VOTED, None
        return self.vote

    def abort_vote(self) -> None:
        if self.phase is Phase.VOTING:
            self.phase, self._pending = Phase.READY, None


@dataclass
class Chat:
    """The chat tab: one model; after a failure the user may regenerate or go on."""

    model: str
    limits: Limits
    conversation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    phase: Phase = Phase.EMPTY
    side: Side = field(init=False)

    def __post_init__(self) -> None:
        self.side = Side(self.model)

    @property
    def turns(self) -> int:
        return sum(1 for m in self.side.messages if m["role"] == "user")

    @property
    def can_send(self) -> bool:
        return self.phase is not Phase.GENERATING and self.kept_turns < self.limits.max_turns

    @property
    def can_regenerate(self) -> bool:
        return self.phase in (Phase.READY, Phase.FAILED)

    def check_submit(self, prompt: str) -> str:
        if self.phase is Phase.GENERATING:
            raise Refused("Wait until the answer has finished.")
        failed_turn = 1 if self.phase is Phase.FAILED else 0  # dropped before sending
        return check_prompt(prompt, self.turns - failed_turn, self.limits)

    def submit(self, prompt: str) -> str:
        text = self.check_submit(prompt)
        if self.phase is Phase.FAILED:  # the failed exchange is dropped, not sent again
            del self.side.messages[-2:]
            self.side.error = None
        self.side.messages.append({"role": "user", "content": text})
        self.side.start_answer()
        self.phase = Phase.GENERATING
        return text

    def check_regenerate(self) -> None:
        if self.phase is Phase.GENERATING:
            raise Refused("Wait until the answer has finished.")
        if self.phase is Phase.EMPTY:
            raise Refused("There is no answer to regenerate yet.")

    def regenerate(self) -> None:
        self.check_regenerate()
        self.side.messages.pop()
        self.side.start_answer()
        self.phase = Phase.GENERATING

    def add_text(self, text: str) -> None:
        if self.phase is Phase.GENERATING:
            self.side.messages[-1]["content"] += text

    def finish(self, reason: str) -> None:
        if self.phase is Phase.GENERATING:
            self.side.done, self.side.finish_reason = True, reason
            self.phase = Phase.READY

    def fail(self, message: str) -> None:
        if self.phase is Phase.GENERATING:
            self.side.done, self.side.error = True, message
            self.phase = Phase.FAILED

    def interrupt(self) -> None:
        self.fail("the answer was interrupted")

    def stop(self) -> None:
        self.finish(STOPPED)

    @property
    def last_prompt(self) -> str:
        users = [m["content"] for m in self.side.messages if m["role"] == "user"]
        return users[-1] if users else ""

    @property
    def kept_turns(self) -> int:
        return self.turns - (1 if self.phase is Phase.FAILED else 0)
