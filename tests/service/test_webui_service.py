"""The arena without a browser: WebUI against a fake OpenAI-compatible gateway on loopback.

Both sides stream at once, one side failing closes the round, votes are acknowledged only
once stored, names stay hidden until then, and limits refuse with a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import FakeGateway, loopback

from store import StoreUnavailable, open_events
from webui.arena import Chat, Phase, Refused, Round
from webui.gateway import Sampling
from webui.sampling import ArenaConfigError
from webui.service import TOO_LONG, Client, Duplicate, GatewayUnavailable, WebUI
from webui.settings import WebUISettings
from webui.state import open_state

PIECES = ["The ", "answer ", "is ", "four", "."]
ME = Client(session="session-1", ip="203.0.113.7")


@contextlib.asynccontextmanager
async def running(
    models: dict[str, Any], tmp_path: Path, delay: float = 0.02, **settings: Any
) -> AsyncIterator[tuple[WebUI, FakeGateway]]:
    fake = FakeGateway(models, delay=delay)
    async with loopback(fake.app) as url:
        defaults: dict[str, Any] = {
            "api_url": f"{url}/v1",
            "store_url": f"sqlite:///{tmp_path / 'corral.db'}",
            "startup_timeout": 2.0,
            "ip_hash_salt": "pepper",
        }
        async with contextlib.AsyncExitStack() as stack:
            settings_ = WebUISettings(**{**defaults, **settings})
            yield await open_state(settings_, stack, rng=random.Random(0)), fake


async def play(ui: WebUI, rnd: Round, prompt: str = "What is 2+2?") -> list[str]:
    return [notice async for notice in ui.send(rnd, prompt, ME)]


async def test_both_sides_stream_at_the_same_time(tmp_path: Path) -> None:
    models = {"m-left": PIECES, "m-right": [p.upper() for p in PIECES]}
    async with running(models, tmp_path, delay=0.05) as (ui, fake):
        rnd = await ui.new_battle()
        snapshots = []
        async for _ in ui.send(rnd, "What is 2+2?", ME):
            snapshots.append(tuple(len(s.messages[-1]["content"]) for s in rnd.sides))
        assert fake.max_in_flight == 2
        full = len("".join(PIECES))
        assert any(0 < a < full and 0 < b < full for a, b in snapshots), snapshots
        assert rnd.phase is Phase.READY
        texts = {s.model: s.messages[-1]["content"] for s in rnd.sides}
        assert texts == {"m-left": "The answer is four.", "m-right": "THE ANSWER IS FOUR."}
        # both sides got the same prompt and the arena's sampling parameters
        assert [r["messages"] for r in fake.requests] == [
            [{"role": "user", "content": "What is 2+2?"}]
        ] * 2
        assert {(r["temperature"], r["max_tokens"], r["stream"]) for r in fake.requests} == {
            (0.7, 512, True)
        }
        logged = await ui.events.read("conversations")
        assert len(logged) == 1
        record = logged[0][1]
        assert record["conversation_id"] == rnd.conversation_id
        assert [s["model"] for s in record["sides"]] == list(rnd.models)
        assert record["mode"] == "battle" and record["anonymous"] is True


async def test_one_side_failing_mid_stream_fails_the_turn(tmp_path: Path) -> None:
    models = {"steady": PIECES, "flaky": {"pieces": PIECES, "fail_after": 2}}
    async with running(models, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        notices = await play(ui, rnd)
        assert rnd.phase is Phase.FAILED
        flaky = rnd.models.index("flaky")
        side = rnd.sides[flaky]
        assert side.messages[-1]["content"] == "The answer "  # what came before the error
        assert side.error is not None and "failed" in side.error
        assert "flaky" not in side.error  # the name stays hidden: "worker for Model X failed"
        assert rnd.sides[1 - flaky].finish_reason == "stop"
        assert "press Regenerate" in notices[-1] and "voted on once both answer" in notices[-1]
        with pytest.raises(Refused, match="The last turn failed"):
            await ui.vote(rnd, "model_a", ME)
        assert await ui.events.read("votes") == []
        (_, record), *_ = await ui.events.read("conversations")
        assert record["sides"][flaky]["error"] == side.error


async def test_a_side_refused_up_front_fails_too(tmp_path: Path) -> None:
    models = {"fine": PIECES, "down": {"pieces": [], "status": 503}}
    async with running(models, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd)
        down = rnd.sides[rnd.models.index("down")]
        assert down.error is not None and down.error.startswith("This model is unavailable")
        assert rnd.phase is Phase.FAILED and not rnd.can_vote and rnd.can_regenerate


async def test_vote_is_stored_then_names_are_revealed(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd)
        assert rnd.label(0) == "Model A" and rnd.label(1) == "Model B"
        message = await ui.vote(rnd, "model_b", ME)
        assert f"Model A was {rnd.models[0]}, Model B was {rnd.models[1]}" in message
        assert rnd.label(0) == f"Model A: {rnd.models[0]}"
        ((_, record),) = await ui.events.read("votes")
        assert record["winner"] == "model_b"
        assert (record["model_a"], record["model_b"]) == rnd.models
        assert record["anonymous"] is True and record["mode"] == "battle"
        assert record["conversation_id"] == rnd.conversation_id
        assert record["sampling"] == {"temperature": 0.7, "top_p": 1.0, "max_tokens": 512}
        assert record["started_at"] <= record["voted_at"]
        assert record["conversation_a"][-1]["content"] == "The answer is four."
        assert record["ip_hash"] and len(record["ip_hash"]) == 32
        assert ME.ip not in str(record)
        with pytest.raises(Refused, match="already voted"):
            await ui.vote(rnd, "model_a", ME)
        with pytest.raises(Refused, match="round is over"):
            await play(ui, rnd)
        assert len(await ui.events.read("votes")) == 1


async def test_vote_before_both_answers_is_refused(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path, delay=0.05) as (ui, _):
        rnd = await ui.new_battle()
        stream = ui.send(rnd, "hi", ME)
        await anext(stream)
        with pytest.raises(Refused, match="before you vote"):
            await ui.vote(rnd, "model_a", ME)
        async for _ in stream:
            pass
        await ui.vote(rnd, "tie", ME)
        assert rnd.phase is Phase.VOTED


async def test_concurrent_double_vote_stores_one(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd)
        results = await asyncio.gather(
            ui.vote(rnd, "model_a", ME), ui.vote(rnd, "model_b", ME), return_exceptions=True
        )
        assert sum(isinstance(r, Refused) for r in results) == 1
        assert len(await ui.events.read("votes")) == 1


class FlakyLog:
    """An event log that is down until told otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.records: list[tuple[str, dict[str, Any]]] = []

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        if self.down:
            raise StoreUnavailable("redis: connection refused")
        self.records.append((stream, dict(record)))
        return str(len(self.records))

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        if self.down:
            raise StoreUnavailable("redis: connection refused")
        rows = [(str(i + 1), r) for i, (s, r) in enumerate(self.records) if s == stream]
        rows = [(i, r) for i, r in rows if after is None or int(i) > int(after)]
        return rows[:limit]

    async def close(self) -> None:
        pass


async def test_a_vote_the_store_refused_is_not_acknowledged(tmp_path: Path) -> None:
    fake = FakeGateway({"m1": PIECES, "m2": PIECES})
    log = FlakyLog()
    async with loopback(fake.app) as url:
        settings = WebUISettings(api_url=f"{url}/v1", ip_hash_salt="s")
        async with contextlib.AsyncExitStack() as stack:
            ui = await open_state(settings, stack, events=log, rng=random.Random(1))
            rnd = await ui.new_battle()
            notices = await play(ui, rnd)
            assert "could not be logged" in notices[-1]
            with pytest.raises(Refused, match="Your vote was NOT saved"):
                await ui.vote(rnd, "model_a", ME)
            assert rnd.phase is Phase.READY and not rnd.revealed  # nothing shown, retry allowed
            log.down = False
            await ui.vote(rnd, "model_a", ME)
            assert [s for s, _ in log.records] == ["votes", "vote_index"]
            assert rnd.revealed


async def test_input_limits_refuse_before_anything_is_sent(tmp_path: Path) -> None:
    settings = {"max_input_chars": 20, "max_turns": 1}
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path, **settings) as (ui, fake):
        rnd = await ui.new_battle()
        with pytest.raises(Refused, match="has 21 characters; the limit is 20"):
            await play(ui, rnd, "x" * 21)
        assert fake.requests == [] and rnd.phase is Phase.EMPTY
        await play(ui, rnd, "short")
        with pytest.raises(Refused, match="limit of 1 turns"):
            await play(ui, rnd, "again")
        assert len(fake.requests) == 2


async def test_rate_limit_per_user_not_per_client_chosen_session(tmp_path: Path) -> None:
    settings = {"session_rate_limit": 2, "ip_rate_limit": 0}
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path, **settings) as (ui, fake):
        me = Client(session="session-1", ip=ME.ip, user="user-1")
        rnd = await ui.new_battle()
        async for _ in ui.send(rnd, "one", me):
            pass
        async for _ in ui.regenerate(rnd, me):
            pass
        with pytest.raises(Refused, match="Too many requests from this browser"):
            await anext(ui.send(rnd, "two", me))
        # a new session hash (the client picks it) does not reset the signed user's window
        same_user = Client(session="session-9", ip=ME.ip, user="user-1")
        with pytest.raises(Refused, match="Too many requests from this browser"):
            await anext(ui.send(await ui.new_battle(), "hi", same_user))
        other = Client(session="session-2", ip=ME.ip, user="user-2")
        async for _ in ui.send(await ui.new_battle(), "hi", other):
            pass
        assert len(fake.requests) == 6


async def test_weights_pick_who_battles(tmp_path: Path) -> None:
    models = {"m1": PIECES, "m2": PIECES, "m3": PIECES}
    weights = {"m1": 1.0, "m2": 1.0, "m3": 0.0}
    async with running(models, tmp_path, arena_weights=weights) as (ui, _):
        pairs = [(await ui.new_battle()).models for _ in range(60)]
        assert set(pairs) == {("m1", "m2"), ("m2", "m1")}  # m3 never; sides shuffled


async def test_one_model_served_means_no_battle_but_a_message(tmp_path: Path) -> None:
    async with running({"solo": PIECES}, tmp_path) as (ui, _):
        with pytest.raises(Refused, match="needs two models"):
            await ui.new_battle()
        with pytest.raises(Refused, match="two different models"):
            await ui.new_side_by_side("solo", "solo")


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"m1": 1, "typo": 1}, "does not serve: typo"), ({"m1": 1, "m2": 0}, "only m1")],
)
async def test_bad_weights_stop_the_start(
    tmp_path: Path, weights: dict[str, float], message: str
) -> None:
    with pytest.raises(ArenaConfigError, match=message):
        settings = {"arena_weights": weights, "startup_timeout": 0.2}
        async with running({"m1": PIECES, "m2": PIECES}, tmp_path, **settings):
            pass


@pytest.mark.parametrize("wait_for", [[], ["m1", "m2"]])
async def test_start_up_waits_for_the_models_it_is_told_of(
    tmp_path: Path, wait_for: list[str]
) -> None:
    """`corral up` starts the UI beside the workers; a model that loads later is waited for."""
    models: dict[str, Any] = {"m1": PIECES}

    async def second_model_loads() -> None:
        await asyncio.sleep(0.6)
        models["m2"] = PIECES  # the fake gateway serves this very dict

    loading = asyncio.create_task(second_model_loads())
    settings = {"startup_timeout": 10.0, "wait_for_models": wait_for, "models_refresh_s": 60.0}
    try:
        async with running(models, tmp_path, **settings) as (ui, _):
            if wait_for:  # both listed: a battle can start at once
                assert sorted(await ui.models()) == ["m1", "m2"]
                assert {*(await ui.new_battle()).models} == {"m1", "m2"}
            else:  # without it the start does not wait for a second model
                assert await ui.models() == ["m1"]
    finally:
        await loading


async def test_unreachable_gateway_stops_the_start(tmp_path: Path) -> None:
    settings = WebUISettings(api_url="http://127.0.0.1:1/v1", startup_timeout=0.2)
    async with contextlib.AsyncExitStack() as stack:
        with pytest.raises(GatewayUnavailable, match="cannot list models"):
            await open_state(settings, stack, events=FlakyLog())


async def test_side_by_side_is_named_and_stored_as_such(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        with pytest.raises(Refused, match="not served"):
            await ui.new_side_by_side("m1", "gone")
        rnd = await ui.new_side_by_side("m2", "m1")
        assert rnd.models == ("m2", "m1") and rnd.label(0) == "Model A: m2"
        await play(ui, rnd)
        await ui.vote(rnd, "model_a", ME)
        ((_, record),) = await ui.events.read("votes")
        assert record["anonymous"] is False and record["mode"] == "side_by_side"


async def test_chat_passes_its_sampling_parameters(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, fake):
        chat = Chat("m2", ui.limits)
        sampling = Sampling(temperature=0.2, top_p=0.5, max_tokens=64)
        async for _ in ui.chat_send(chat, "hello", sampling, ME):
            pass
        assert chat.side.messages[-1]["content"] == "The answer is four."
        (body,) = fake.requests
        assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == (
            "m2",
            0.2,
            0.5,
            64,
        )
        ((_, record),) = await ui.events.read("conversations")
        assert record["mode"] == "chat" and record["sampling"]["temperature"] == 0.2


async def test_leaving_mid_answer_fails_the_round_and_stops_the_requests(tmp_path: Path) -> None:
    async with running({"m1": PIECES * 20, "m2": PIECES * 20}, tmp_path, delay=0.05) as (ui, f):
        rnd = await ui.new_battle()
        stream = ui.send(rnd, "hi", ME)
        await anext(stream)
        await stream.aclose()  # what Gradio does when the page goes away
        assert rnd.phase is Phase.FAILED
        for _ in range(100):
            if f.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert f.in_flight == 0


async def test_votes_survive_a_restart(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd)
        await ui.vote(rnd, "model_a", ME)
    log = open_events(f"sqlite:///{tmp_path / 'corral.db'}")
    try:
        ((_, record),) = await log.read("votes")
        assert record["conversation_id"] == rnd.conversation_id
    finally:
        await log.close()


class RetryingLog:
    """Wraps a real event log and sends every write twice, as a client retrying after a
    timeout whose first attempt did land."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def append(self, stream: str, record: Mapping[str, Any], key: str | None = None) -> str:
        first = await self.inner.append(stream, record, key=key)
        second = await self.inner.append(stream, record, key=key)
        assert key is None or first == second
        return second

    async def read(
        self, stream: str, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return list(await self.inner.read(stream, after=after, limit=limit))

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_votes_through_the_service_dedupe_retries_and_cap_users(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Votes through WebUI: every write is duplicated, yet each vote counts once; a user
    past the daily cap is refused, while another user (same address) may still vote."""
    url_ = (
        str(request.getfixturevalue("redis_url"))
        if backend == "redis"
        else f"sqlite:///{tmp_path / 'corral.db'}"
    )
    log = RetryingLog(open_events(url_))
    fake = FakeGateway({"m1": PIECES, "m2": PIECES}, delay=0.0)
    async with loopback(fake.app) as url:
        settings = WebUISettings(
            api_url=f"{url}/v1",
            store_url=url_,
            ip_hash_salt="s",
            user_vote_cap=2,
            ip_vote_cap=3,
            min_votes=1,
            bootstrap_rounds=100,
        )
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(log.close)
            ui = await open_state(settings, stack, events=log, rng=random.Random(3))
            alice = Client(session="s1", ip="203.0.113.9", user="alice")
            bob = Client(session="s1", ip="203.0.113.9", user="bob")
            carol = Client(session="s1", ip="198.51.100.1", user="carol")

            async def battle(who: Client) -> str:
                rnd = await ui.new_battle()
                async for _ in ui.send(rnd, "What is 2+2?", who):
                    pass
                return await ui.vote(rnd, "model_a", who)

            for _ in range(2):
                assert (await battle(alice)).startswith("Vote saved")
            with pytest.raises(Refused, match="you reached the limit of 2 votes a day"):
                await battle(alice)
            assert (await battle(bob)).startswith("Vote saved")  # the address's 3rd vote
            with pytest.raises(Refused, match="your network address reached the limit of 3"):
                await battle(bob)
            assert (await battle(carol)).startswith("Vote saved")  # another address

            assert len(await log.read("votes")) == 4  # written 8 times, stored 4
            assert len(await log.read("vote_index")) == 4
            board = await ui.leaderboard()
            assert board.counts.counted == 4 and board.counts.duplicate == 0
            assert sum(r.votes for r in board.rows) == 8


async def test_draws_favour_models_short_of_votes_and_skip_retired_ones(tmp_path: Path) -> None:
    models = {m: PIECES for m in ("m1", "m2", "m3", "m4")}
    async with running(models, tmp_path, retired_models=["m4"]) as (ui, _):
        for i in range(30):  # m1 and m2 are past the threshold (20), m3 has no votes
            compact = {"vote_id": f"v{i}", "model_a": "m1", "model_b": "m2", "winner": "tie"}
            await ui.events.append("vote_index", {**compact, "anonymous": True, "identity": []})
        seen: dict[str, int] = {}
        for _ in range(300):
            for model in (await ui.new_battle()).models:
                seen[model] = seen.get(model, 0) + 1
        assert "m4" not in seen
        assert seen["m3"] > 250  # weight 4 against 1 and 1: in nearly every battle
        assert ui.table.votes_by_model() == {"m1": 30, "m2": 30}


async def test_identity_is_judged_at_vote_time_on_the_answers(tmp_path: Path) -> None:
    models = {"m1": ["Microsoft sells ", "software."], "m2": ["I am ", "Llama3."]}
    async with running(models, tmp_path, delay=0.0, min_votes=1) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd, "In one sentence, what does Microsoft sell?")
        message = await ui.vote(rnd, "model_a", ME)
        assert "does not count on the leaderboard" in message and "(llama)" in message
        ((_, stored),) = await ui.events.read("votes")
        assert stored["identity"] == ["llama"]  # the maker the prompt named is not held
        assert len(stored["style"]) == 2 and stored["style"][0][0] > 0
        ((_, compact),) = await ui.events.read("vote_index")
        assert compact["identity"] == ["llama"] and "conversation_a" not in compact
        board = await ui.leaderboard()
        assert (board.counts.identity, board.counts.counted) == (1, 0)


async def test_the_board_is_cached_and_refreshed_in_the_background(tmp_path: Path) -> None:
    """Opening the tab again within the refresh time reads nothing from the store; past it,
    the cached board is returned at once while a refresh absorbs only the new votes."""
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path, min_votes=1) as (ui, _):
        compact = {"model_a": "m1", "model_b": "m2", "winner": "model_a", "anonymous": True}
        await ui.events.append("vote_index", {**compact, "vote_id": "v1", "identity": []})
        first = await ui.leaderboard()
        assert first.counts.counted == 1
        await ui.events.append("vote_index", {**compact, "vote_id": "v2", "identity": []})
        assert await ui.leaderboard() is first  # cached: the new vote is not read yet
        ui._board_at -= ui.settings.leaderboard_refresh_s  # the cache is now old
        assert await ui.leaderboard() is first  # still answered from the cache at once...
        assert ui._refresh is not None
        await ui._refresh  # ...while the refresh runs
        assert (await ui.leaderboard()).counts.counted == 2
        assert ui.table.counts.stored == 2  # each vote absorbed once


async def test_the_prompt_is_in_the_round_before_anything_is_asked(tmp_path: Path) -> None:
    models = {"m1": {"pieces": PIECES, "first_delay": 0.5}, "m2": PIECES}
    async with running(models, tmp_path) as (ui, fake):
        rnd = await ui.new_battle()
        stream = ui.send(rnd, "What is 2+2?", ME)
        assert await anext(stream) == ""
        assert rnd.phase is Phase.GENERATING and rnd.last_prompt == "What is 2+2?"
        assert "Thinking" in rnd.sides[0].display()[-1]["content"]
        assert fake.requests == []
        async for _ in stream:
            pass
        assert rnd.phase is Phase.READY


async def test_one_generation_per_tab(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        run = ui.claim(ME, "battle", "hi")
        with pytest.raises(Duplicate):  # a second event while the first runs
            ui.claim(ME, "battle", "something else")
        other = ui.claim(ME, "chat", "hi")  # another tab of the page is its own
        ui.release(other)
        ui.release(run)
        assert run.done.is_set()
        with pytest.raises(Duplicate):  # the same prompt again at once: Enter, then Send
            ui.claim(ME, "battle", " hi ")
        ui.release(ui.claim(ME, "battle", "a new prompt"))
        ui.release(ui.claim(Client("session-2", None), "battle", "hi"))  # another user
        ui.release(ui.claim(Client("session-1", None, page="p2"), "battle", "hi"))  # page
        rnd = await ui.new_battle()
        first = ui.claim(ME, "battle", "one")
        first.conversation = rnd
        await play(ui, rnd, "one")  # answered: its handler only has the page left to draw
        ui.release(ui.claim(ME, "battle", "two"))  # so the next send is not a duplicate
        ui.release(first)


async def test_stop_closes_both_streams_and_keeps_the_text(tmp_path: Path) -> None:
    models = {"m1": PIECES * 40, "m2": PIECES * 40}
    async with running(models, tmp_path, delay=0.05) as (ui, fake):
        rnd = await ui.new_battle()
        run = ui.claim(ME, "battle", "hi")
        run.conversation = rnd

        async def consume() -> list[str]:
            try:
                return [n async for n in ui.send(rnd, "hi", ME, run)]
            finally:
                ui.release(run)

        task = asyncio.create_task(consume())
        while not (
            rnd.phase is Phase.GENERATING and all(s.messages[-1]["content"] for s in rnd.sides)
        ):
            await asyncio.sleep(0.02)
        assert fake.in_flight == 2
        assert await ui.stop(ME, "battle") is rnd  # waits until the generation has ended
        assert task.done() and fake.in_flight == 0 and fake.aborted == 2
        assert rnd.phase is Phase.READY
        assert {s.finish_reason for s in rnd.sides} == {"stopped"}
        ((_, record),) = await ui.events.read("conversations")  # what was said is stored
        assert record["conversation_id"] == rnd.conversation_id
        assert await ui.stop(ME, "battle") is None  # nothing runs now


async def test_the_answer_fits_the_context_or_is_refused(tmp_path: Path) -> None:
    models = {
        "small": {"pieces": PIECES, "context_length": 120},
        "big": {"pieces": PIECES, "context_length": 8192},
    }
    async with running(models, tmp_path) as (ui, fake):
        rnd = await ui.new_battle()
        with pytest.raises(Refused) as refused:
            await play(ui, rnd, "word " * 60)  # ~158 tokens estimated: no room in 120
        assert str(refused.value) == TOO_LONG["arena"]
        assert fake.requests == [] and rnd.phase is Phase.EMPTY
        await play(ui, rnd, "word " * 20)  # fits, with less room than max_tokens (512)
        budgets = {r["model"]: r["max_tokens"] for r in fake.requests}
        assert budgets["big"] == 512 and 16 <= budgets["small"] < 120
        chat = Chat("small", ui.limits)
        with pytest.raises(Refused, match="lower Max new tokens"):
            async for _ in ui.chat_send(chat, "word " * 60, Sampling(0.7, 1.0, 64), ME):
                pass


async def test_feedback_on_an_answer_is_stored(tmp_path: Path) -> None:
    async with running({"m1": PIECES, "m2": PIECES}, tmp_path) as (ui, _):
        rnd = await ui.new_battle()
        await play(ui, rnd)
        assert "reported" in await ui.feedback(rnd, 1, 1, "Report", ME)
        chat = Chat("m1", ui.limits)
        async for _ in ui.chat_send(chat, "hello", Sampling(0.7, 1.0, 64), ME):
            pass
        assert "Thank you" in await ui.feedback(chat, 0, 1, "Dislike", ME)
        with pytest.raises(Refused, match="Unknown feedback"):
            await ui.feedback(chat, 0, 1, "Love", ME)
        (_, report), (_, rating) = await ui.events.read("feedback")
        assert (report["mode"], report["side"], report["model"]) == ("battle", "B", rnd.models[1])
        assert report["message"] == rnd.sides[1].messages[1] and report["feedback"] == "Report"
        assert (rating["mode"], rating["model"], rating["feedback"]) == ("chat", "m1", "Dislike")
        assert rating["conversation_id"] == chat.conversation_id and rating["ip_hash"]


async def test_the_model_list_describes_each_model(tmp_path: Path) -> None:
    models = {"m1": {"pieces": PIECES, "context_length": 2048}, "m2": PIECES}
    descriptions = {"m1": "A small chat model."}
    async with running(models, tmp_path, model_descriptions=descriptions) as (ui, _):
        assert await ui.model_list() == (
            "2 models are served:\n\n- **m1** A small chat model. (context: 2048 tokens)\n- **m2**"
        )
