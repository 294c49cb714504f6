"""What the web page's buttons do, without the page: the arena, chat and leaderboard actions.

`WebUI` holds the long-lived things (gateway client, event log, rate limits) opened in the
app's lifespan; the Gradio wiring (`webui.arena_tab`, `webui.chat_tab`) only turns its results
into components.
Generations yield at once (the prompt is echoed before any token), after every batch of
streamed text, and every second while nothing arrives, so the page can redraw. One browser
tab runs one generation at a time (`claim`): a second submission while one runs, or the same
prompt sent twice within a moment (Enter, then Send), is dropped. `stop` ends a generation and
closes its streams, which the gateway passes on to the engines as an abort.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import openai

from store import EventLog, RateLimiter, StoreUnavailable
from store.memory_limits import MemoryRateLimiter
from webui import leaderboard, records, votes
from webui.arena import VOTE_LABELS, Chat, Limits, Phase, Refused, Round, VoteKind
from webui.gateway import Delta, Failed, Gateway, ModelInfo, Sampling
from webui.identity import IdentityFilter
from webui.ratelimit import RateLimits
from webui.sampling import (
    ArenaConfigError,
    balanced,
    check_weights,
    draw_pair,
    effective_weights,
)
from webui.settings import WebUISettings

logger = logging.getLogger(__name__)

STORE_DOWN = "the vote and conversation store is unavailable"
TICK_S = 1.0  # the page redraws this often while no text arrives (the "Thinking..." clock)
REPEAT_S = 1.5  # the same prompt again within this many seconds is the same submission
STOP_WAIT_S = 5.0  # how long Stop, New round or Clear wait for the old generation to end
# Tokens per character assumed when budgeting context without the model's tokenizer: high
# enough for most prose and code (about 1 in 3.5), so the budget rarely lets too much through.
TOKENS_PER_CHAR = 0.5
MESSAGE_OVERHEAD = 8  # template tokens around each message
MIN_ANSWER_TOKENS = 16  # fewer than this left for the answer: the conversation is too long

# How a failure reads in the arena and in chat (see webui.gateway.FAILURES for the rest).
TOO_LONG = {
    "arena": "This conversation is too long for the models: start a new round.",
    "chat": "This conversation is too long for the model: press Clear to start a new one, "
    "or lower Max new tokens (under Parameters).",
}
DAY_S = 86_400.0


class GatewayUnavailable(RuntimeError):
    """The gateway did not list its models in time at start-up."""


class Duplicate(Exception):
    """This tab is already generating, or just sent this prompt: drop the submission."""


@dataclass
class Run:
    """One tab's generation in progress: `stop` ends it, `done` is set once it has ended."""

    key: tuple[str, str, str]
    conversation: Round | Chat | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    @property
    def answered(self) -> bool:
        """Its answers are in (or it was refused): what is left is drawing the page."""
        return self.conversation is not None and self.conversation.phase is not Phase.GENERATING


@dataclass(frozen=True)
class Client:
    """Who is asking. `session` is the page's (Gradio's session hash: the client picks it, so
    it keys page state only, never a limit); `user` is the id from the signed cookie the server
    issued (webui.users); `ip` is the client address, from X-Forwarded-For only behind a
    trusted proxy."""

    session: str
    ip: str | None
    user: str | None = None

    @property
    def limit_key(self) -> str:
        """What per-user limits and caps count against: the signed user id, else the address
        (or, with neither, the session: tests and callers without a page)."""
        if self.user:
            return f"user:{self.user}"
        return f"address:{self.ip}" if self.ip else f"session:{self.session}"

    page: str = ""  # the browser page (Gradio's session): one generation per page and tab


class WebUI:
    """The web UI's state: its settings, the gateway client, the event log and the limits.

    `webui.state.open_state` builds it for the app's lifespan and waits for the models.
    """

    def __init__(
        self,
        settings: WebUISettings,
        gateway: Gateway,
        events: EventLog,
        rng: random.Random | None = None,
        caps: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.events = events
        self.rng = rng or random.SystemRandom()
        self.limits = Limits(settings.max_input_chars, settings.max_turns)
        self.sampling = Sampling(settings.temperature, settings.top_p, settings.max_tokens)
        self.rate = RateLimits(
            settings.session_rate_limit, settings.ip_rate_limit, settings.rate_window_s
        )
        salt = settings.ip_hash_salt
        self._salt = salt.get_secret_value().encode() if salt else secrets.token_bytes(32)
        self._models: list[str] = []
        self._context: dict[str, int] = {}  # model -> context length, when the gateway says
        self._models_at = -1e9
        self._runs: dict[tuple[str, str, str], Run] = {}
        self._sent: dict[tuple[str, str, str], tuple[str, float]] = {}  # last prompt, when
        self.identity = IdentityFilter(settings.identity_words, settings.identity_makers)
        self.caps = caps or MemoryRateLimiter()  # daily vote caps, as token buckets
        self.table = votes.VoteTable(self.identity)
        self._sync_lock = asyncio.Lock()
        self._synced_at = -1e9
        self._board: leaderboard.Leaderboard | None = None
        self._board_at = -1e9
        self._board_stored = -1
        self._refresh: asyncio.Task[None] | None = None

    async def wait_for_models(self) -> list[str]:
        """Wait until the gateway lists the models the settings name, then check the arena
        weights against what it serves (ArenaConfigError, or GatewayUnavailable in time)."""
        served = await self._wait_for_models()
        check_weights(self.settings.arena_weights, served)
        logger.info(
            "gateway %s serves: %s", self.settings.api_url, ", ".join(served) or "no model yet"
        )
        return served

    async def _wait_for_models(self) -> list[str]:
        wanted = set(self.settings.arena_weights) | set(self.settings.wait_for_models)
        deadline = time.monotonic() + self.settings.startup_timeout
        last_error: Exception | None = None
        while True:
            try:
                served = self._remember(await self.gateway.model_infos())
                if served and wanted <= set(served):
                    return served
                last_error = None
            except openai.OpenAIError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        if last_error is not None:
            raise GatewayUnavailable(
                f"cannot list models at {self.settings.api_url}: {last_error}"
            ) from last_error
        if not self._models and not wanted:
            logger.warning("the gateway lists no model yet; the UI starts anyway")
        return self._models

    async def models(self) -> list[str]:
        """The gateway's models, cached for models_refresh_s; the last list if it is down."""
        if time.monotonic() - self._models_at >= self.settings.models_refresh_s:
            try:
                self._remember(await self.gateway.model_infos())
            except openai.OpenAIError as exc:
                logger.warning("cannot refresh the model list: %s", exc)
        return list(self._models)

    def _remember(self, infos: list[ModelInfo]) -> list[str]:
        self._models = [m.id for m in infos]
        self._context = {m.id: m.context_length for m in infos if m.context_length}
        self._models_at = time.monotonic()
        return list(self._models)

    def context_length(self, model: str) -> int | None:
        return self._context.get(model)

    async def model_list(self) -> str:
        """The served models as a markdown list: each with its description and context."""
        served = await self.models()
        if not served:
            return "No model is served right now."
        lines = []
        for model in served:
            parts = [f"**{model}**"]
            described = self.settings.model_descriptions.get(model)
            if described:
                parts.append(described)
            if model in self._context:
                parts.append(f"(context: {self._context[model]} tokens)")
            lines.append("- " + " ".join(parts))
        return f"{len(served)} models are served:\n\n" + "\n".join(lines)

    def budget(self, model: str, messages: list[dict[str, str]], sampling: Sampling) -> Sampling:
        """`sampling` with max_tokens lowered to the room the conversation leaves in the
        model's context (an estimate: the UI has no tokenizer); Refused when too little is
        left. Unchanged when the gateway does not say the context length."""
        length = self._context.get(model)
        if length is None:
            return sampling
        used = sum(len(m["content"]) * TOKENS_PER_CHAR + MESSAGE_OVERHEAD for m in messages)
        room = length - int(used)
        if room < MIN_ANSWER_TOKENS:
            raise Refused("too long")
        if sampling.max_tokens <= room:
            return sampling
        return Sampling(sampling.temperature, sampling.top_p, room)

    # one generation per tab ----------------------------------------------------------------

    def claim(self, client: Client, tab: str, prompt: str | None = None) -> Run:
        """Start this tab's generation; Duplicate while one runs, or when `prompt` is what it
        sent a moment ago. Call it before any await, so that two events cannot both pass."""
        key = (client.session, client.page, tab)
        current = self._runs.get(key)
        if current is not None and not current.answered:
            raise Duplicate(key)
        now = time.monotonic()
        if prompt is None:  # a regenerate: the next send of the same prompt is meant
            self._sent.pop(key, None)
        else:
            last = self._sent.get(key)
            if last is not None and last[0] == prompt.strip() and now - last[1] < REPEAT_S:
                raise Duplicate(key)
            self._sent[key] = (prompt.strip(), now)
        run = self._runs[key] = Run(key)
        return run

    def release(self, run: Run) -> None:
        if self._runs.get(run.key) is run:
            del self._runs[run.key]
        if run.conversation is not None and run.conversation.phase is Phase.FAILED:
            self._sent.pop(run.key, None)  # sending the failed prompt again is a retry
        run.done.set()

    async def stop(self, client: Client, tab: str) -> Round | Chat | None:
        """Stop this tab's generation and wait (a few seconds at most) until it has ended;
        returns its conversation, or None when nothing ran."""
        key = (client.session, client.page, tab)
        self._sent.pop(key, None)  # after a stop or a new round, the same prompt is meant
        run = self._runs.get(key)
        if run is None:
            return None
        run.stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.done.wait(), STOP_WAIT_S)
        return run.conversation

    # arena -------------------------------------------------------------------------------

    async def new_battle(self) -> Round:
        s = self.settings
        weights = effective_weights(s.arena_weights, await self.models(), s.retired_models)
        if s.newcomer_boost > 0:
            await self._sync_if_old()
            weights = balanced(weights, self.table.votes_by_model(), s.min_votes, s.newcomer_boost)
        try:
            pair = draw_pair(weights, self.rng)
        except ArenaConfigError as exc:
            raise Refused(f"The arena needs two models to battle: {exc}.") from exc
        return Round(pair, anonymous=True, limits=self.limits)

    async def new_side_by_side(self, model_a: str | None, model_b: str | None) -> Round:
        served = await self.models()
        if not model_a or not model_b:
            raise Refused("Pick a model for each side.")
        for model in (model_a, model_b):
            if model not in served:
                raise Refused(f"Model {model} is not served now.")
        if model_a == model_b:
            raise Refused("Pick two different models.")
        return Round((model_a, model_b), anonymous=False, limits=self.limits)

    async def send(
        self, rnd: Round, prompt: str, client: Client, run: Run | None = None
    ) -> AsyncGenerator[str, None]:
        """Ask both sides; yields a notice: "" at once (the prompt is in the round), then
        while streaming, then the outcome. Raises Refused up front."""
        text = rnd.check_submit(prompt)
        self._arena_budgets(rnd, text)
        self.rate.acquire(client.limit_key, client.ip)
        rnd.submit(prompt)
        try:
            yield ""
            async with contextlib.aclosing(self._generate(rnd, client, run)) as notices:
                async for notice in notices:
                    yield notice
        finally:
            rnd.interrupt()  # no-op unless the page went away before the answers

    async def regenerate(
        self, rnd: Round, client: Client, run: Run | None = None
    ) -> AsyncGenerator[str, None]:
        rnd.check_regenerate()
        self.rate.acquire(client.limit_key, client.ip)
        rnd.regenerate()
        try:
            yield ""
            async with contextlib.aclosing(self._generate(rnd, client, run)) as notices:
                async for notice in notices:
                    yield notice
        finally:
            rnd.interrupt()

    def _arena_budgets(self, rnd: Round, prompt: str | None) -> list[Sampling]:
        """Each side's sampling within its model's context; Refused when a side has no room."""
        budgets = []
        for side in rnd.sides:
            history = side.history()
            if prompt is not None:  # what will be sent once the prompt is submitted
                kept = history[:-2] if rnd.phase is Phase.FAILED else history
                history = [*kept, {"role": "user", "content": prompt}]
            try:
                budgets.append(self.budget(side.model, history, self.sampling))
            except Refused:
                raise Refused(TOO_LONG["arena"]) from None
        return budgets

    async def _generate(
        self, rnd: Round, client: Client, run: Run | None
    ) -> AsyncGenerator[str, None]:
        try:
            budgets = self._arena_budgets(rnd, None)
        except Refused as exc:
            for i in range(len(rnd.sides)):
                rnd.fail(i, str(exc))
            budgets = []
        requests = [(s.model, s.history(), b) for s, b in zip(rnd.sides, budgets, strict=False)]
        stop = run.stop if run else None
        try:
            async with contextlib.aclosing(
                self.gateway.stream_sides(requests, stop=stop, tick=TICK_S)
            ) as batches:
                async for batch in batches:
                    for event in batch:
                        if isinstance(event, Delta):
                            rnd.add_text(event.side, event.text)
                        elif isinstance(event, Failed):
                            rnd.fail(event.side, rnd.redact(self._words(event, "arena")))
                        else:
                            rnd.finish(event.side, event.reason)
                    yield ""
            rnd.stop()  # no-op unless the user stopped it
        finally:
            rnd.interrupt()  # no-op unless the page went away mid-answer
        record = records.round_record(rnd, self.sampling, self._ip_hash(client))
        notice = await self._log(records.CONVERSATIONS, record)
        if rnd.phase is Phase.FAILED:
            lead = (
                "A model failed on this turn: press Regenerate to try it again, or send your "
                "message again (it is back in the box). The round can be voted on once both "
                "answer."
            )
            notice = " ".join(filter(None, [lead, notice]))
        yield notice

    @staticmethod
    def _words(event: Failed, tab: str) -> str:
        return TOO_LONG[tab] if event.kind == "too_long" else event.message

    async def vote(self, rnd: Round, kind: VoteKind, client: Client) -> str:
        """Store the vote; only once it is stored is it acknowledged and are names revealed.

        Both writes (the full record, then its projection) are keyed by the vote id, so a
        retried write stores nothing twice. Daily caps per user and per address apply.
        """
        rnd.begin_vote(kind)
        try:
            await self._charge_vote(client)
            record = records.vote_record(
                rnd, kind, self.sampling, self._ip_hash(client), identity=self.identity
            )
            key = str(record["vote_id"])
            await self.events.append(records.VOTES, record, key=key)
            await self.events.append(votes.VOTE_INDEX, votes.project(record), key=key)
        except StoreUnavailable as exc:
            logger.error("vote not stored: %s", exc)
            rnd.abort_vote()
            raise Refused(
                f"Your vote was NOT saved: {STORE_DOWN}. Nothing was recorded; please try "
                "again in a moment."
            ) from exc
        except BaseException:
            rnd.abort_vote()
            raise
        rnd.commit_vote(record["voted_at"])
        message = (
            f"Vote saved: {VOTE_LABELS[kind]}. Model A was {rnd.models[0]}, "
            f"Model B was {rnd.models[1]}. Start a new round to play again."
        )
        if rnd.anonymous and record["identity"]:
            message += (
                " This battle does not count on the leaderboard: an answer named a model or "
                f"its maker ({', '.join(record['identity'])})."
            )
        return message

    async def _charge_vote(self, client: Client) -> None:
        """Take one vote from the day's allowance of the address and of the user: first look
        whether both have one left (taking nothing), then take from both."""
        s = self.settings
        ip, user = self._ip_hash(client), records.hash_ip(self._salt, client.limit_key)
        buckets = [
            (f"votes:ip:{ip}", s.ip_vote_cap if ip else 0, "your network address"),
            (f"votes:user:{user}", s.user_vote_cap, "you"),
        ]
        buckets = [(bucket, cap, who) for bucket, cap, who in buckets if cap > 0]
        for bucket, cap, who in buckets:
            wait = await self.caps.take(bucket, cap, cap / DAY_S, 0, 1)
            if wait > 0:
                hours = max(1, round(wait / 3600))
                raise Refused(
                    f"Vote not saved: {who} reached the limit of {cap} votes a day. "
                    f"Try again in about {hours} h."
                )
        for bucket, cap, _ in buckets:
            await self.caps.take(bucket, cap, cap / DAY_S, 1, 0)

    # chat --------------------------------------------------------------------------------

    async def chat_send(
        self, chat: Chat, prompt: str, sampling: Sampling, client: Client, run: Run | None = None
    ) -> AsyncGenerator[str, None]:
        text = chat.check_submit(prompt)
        history = chat.side.history()
        if chat.phase is Phase.FAILED:
            history = history[:-2]
        self._chat_budget(chat, [*history, {"role": "user", "content": text}], sampling)
        self.rate.acquire(client.limit_key, client.ip)
        chat.submit(prompt)
        try:
            yield ""
            async with contextlib.aclosing(
                self._chat_generate(chat, sampling, client, run)
            ) as notices:
                async for notice in notices:
                    yield notice
        finally:
            chat.interrupt()

    async def chat_regenerate(
        self, chat: Chat, sampling: Sampling, client: Client, run: Run | None = None
    ) -> AsyncGenerator[str, None]:
        chat.check_regenerate()
        self.rate.acquire(client.limit_key, client.ip)
        chat.regenerate()
        try:
            yield ""
            async with contextlib.aclosing(
                self._chat_generate(chat, sampling, client, run)
            ) as notices:
                async for notice in notices:
                    yield notice
        finally:
            chat.interrupt()

    def _chat_budget(
        self, chat: Chat, messages: list[dict[str, str]], sampling: Sampling
    ) -> Sampling:
        try:
            return self.budget(chat.model, messages, sampling)
        except Refused:
            raise Refused(TOO_LONG["chat"]) from None

    async def _chat_generate(
        self, chat: Chat, sampling: Sampling, client: Client, run: Run | None
    ) -> AsyncGenerator[str, None]:
        try:
            budget = self._chat_budget(chat, chat.side.history(), sampling)
        except Refused as exc:
            chat.fail(str(exc))
            budget = sampling
        stop = run.stop if run else None
        try:
            if chat.phase is Phase.GENERATING:
                async with contextlib.aclosing(
                    self.gateway.stream_sides(
                        [(chat.model, chat.side.history(), budget)], stop=stop, tick=TICK_S
                    )
                ) as batches:
                    async for batch in batches:
                        for event in batch:
                            if isinstance(event, Delta):
                                chat.add_text(event.text)
                            elif isinstance(event, Failed):
                                chat.fail(self._words(event, "chat"))
                            else:
                                chat.finish(event.reason)
                        yield ""
                chat.stop()  # no-op unless the user stopped it
        finally:
            chat.interrupt()
        notice = await self._log(
            records.CONVERSATIONS, records.chat_record(chat, sampling, self._ip_hash(client))
        )
        if chat.phase is Phase.FAILED:
            lead = "Press Regenerate to try again, or send your message again (it is in the box)."
            notice = " ".join(filter(None, [lead, notice]))
        yield notice

    # feedback ----------------------------------------------------------------------------

    async def feedback(
        self, conversation: Round | Chat, side: int, message: int, kind: str, client: Client
    ) -> str:
        """Store a like, dislike or report on one answer; the notice to show."""
        if kind not in records.FEEDBACK_KINDS:
            raise Refused(f"Unknown feedback {kind!r}.")
        record = records.feedback_record(conversation, side, message, kind, self._ip_hash(client))
        try:
            await self.events.append(records.FEEDBACK, record)
        except StoreUnavailable as exc:
            logger.error("feedback not stored: %s", exc)
            raise Refused(f"Your feedback was NOT saved: {STORE_DOWN}.") from exc
        if kind == "Report":
            return "Thank you: the answer was reported for review."
        return "Thank you for your feedback."

    # records and the leaderboard ---------------------------------------------------------

    def _ip_hash(self, client: Client) -> str | None:
        return records.hash_ip(self._salt, client.ip)

    async def _log(self, stream: str, record: dict[str, object]) -> str:
        try:
            await self.events.append(stream, record)
        except StoreUnavailable as exc:
            logger.error("conversation %s not logged: %s", record.get("conversation_id"), exc)
            return f"This conversation could not be logged: {STORE_DOWN}."
        return ""

    async def leaderboard(self) -> leaderboard.Leaderboard:
        """The board, from a cache refreshed in the background once older than
        `leaderboard_refresh_s` (0: recomputed on every call). The first call, and every call
        when the refresh time is 0, waits for the computation; it runs in a worker thread.
        Raises StoreUnavailable when the votes cannot be read and nothing is cached."""
        refresh = self.settings.leaderboard_refresh_s
        if time.monotonic() - self._board_at >= refresh:
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.create_task(self._recompute())
                self._refresh.add_done_callback(_log_failure)
            if self._board is None or refresh == 0:
                await asyncio.shield(self._refresh)
        assert self._board is not None
        return self._board

    async def close(self) -> None:
        """Stop a leaderboard refresh still running (its thread finishes on its own)."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreUnavailable):
                await self._refresh

    async def _recompute(self) -> None:
        await self.sync_votes()
        if self._board is None or self.table.counts.stored != self._board_stored:
            async with self._sync_lock:  # no absorbing thread runs while the snapshot is taken
                stored = self.table.counts.stored
                battles = self.table.battles()
            options = leaderboard.Options.from_settings(self.settings)
            self._board = await asyncio.to_thread(leaderboard.compute, battles, options)
            self._board_stored = stored
        self._board_at = time.monotonic()

    async def sync_votes(self) -> None:
        """Absorb the votes stored since the last look (by any web UI on the same store)."""
        async with self._sync_lock:
            await votes.load(self.events, self.table)
            self._synced_at = time.monotonic()

    async def _sync_if_old(self) -> None:
        if time.monotonic() - self._synced_at < self.settings.leaderboard_refresh_s:
            return
        try:
            await self.sync_votes()
        except StoreUnavailable as exc:  # the draw goes on with the counts it has
            logger.warning("cannot read the vote counts: %s", exc)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("leaderboard refresh failed: %s", task.exception())
