"""The arena's state machine: every transition, and every refusal with its message."""

from __future__ import annotations

import pytest

from webui.arena import Chat, Limits, Phase, Refused, Round, as_written

LIMITS = Limits(max_input_chars=50, max_turns=2)


def battle() -> Round:
    return Round(("left-model", "right-model"), anonymous=True, limits=LIMITS)


def answer(rnd: Round, a: str = "4", b: str = "four") -> None:
    rnd.add_text(0, a)
    rnd.add_text(1, b)
    rnd.finish(0, "stop")
    rnd.finish(1, "stop")


def test_a_full_round() -> None:
    rnd = battle()
    assert (rnd.phase, rnd.can_send, rnd.can_vote) == (Phase.EMPTY, True, False)
    assert rnd.submit("  2+2?  ") == "2+2?"
    assert rnd.phase is Phase.GENERATING and not rnd.can_send
    assert rnd.sides[0].history() == [{"role": "user", "content": "2+2?"}]
    rnd.add_text(0, "4")
    rnd.finish(0, "stop")
    assert rnd.phase is Phase.GENERATING  # B is still answering
    rnd.add_text(1, "fo")
    rnd.add_text(1, "ur")
    rnd.finish(1, "length")
    assert rnd.phase is Phase.READY and rnd.can_vote
    assert rnd.sides[1].messages[-1] == {"role": "assistant", "content": "four"}
    assert rnd.sides[1].finish_reason == "length"
    rnd.begin_vote("model_b")
    assert rnd.phase is Phase.VOTING
    assert rnd.commit_vote() == "model_b"
    assert rnd.phase is Phase.VOTED and rnd.vote == "model_b" and rnd.voted_at


def test_names_are_hidden_until_the_vote_is_stored() -> None:
    rnd = battle()
    rnd.submit("hi")
    answer(rnd)
    assert [rnd.label(0), rnd.label(1)] == ["Model A", "Model B"]
    assert rnd.redact("left-model failed") == "Model A failed"
    rnd.begin_vote("tie")
    assert rnd.label(0) == "Model A"  # not while the vote is being saved
    rnd.commit_vote()
    assert [rnd.label(0), rnd.label(1)] == ["Model A: left-model", "Model B: right-model"]


def test_side_by_side_names_are_shown_from_the_start() -> None:
    rnd = Round(("x", "y"), anonymous=False, limits=LIMITS)
    assert rnd.label(1) == "Model B: y"
    assert rnd.redact("x failed") == "x failed"


def test_vote_before_any_prompt_is_refused() -> None:
    with pytest.raises(Refused, match="nothing to vote on yet"):
        battle().begin_vote("model_a")


def test_vote_before_both_answers_finished_is_refused() -> None:
    rnd = battle()
    rnd.submit("hi")
    rnd.finish(0, "stop")
    with pytest.raises(Refused, match="Wait until both answers have finished before you vote"):
        rnd.begin_vote("model_a")
    assert rnd.phase is Phase.GENERATING


def test_double_vote_is_refused_while_saving_and_after() -> None:
    rnd = battle()
    rnd.submit("hi")
    answer(rnd)
    rnd.begin_vote("model_a")
    with pytest.raises(Refused, match="being saved"):
        rnd.begin_vote("model_b")
    rnd.commit_vote()
    with pytest.raises(Refused, match="already voted"):
        rnd.begin_vote("model_b")
    assert rnd.vote == "model_a"


def test_a_failed_turn_is_not_voted_on_but_can_be_regenerated() -> None:
    rnd = battle()
    rnd.submit("hi")
    answer(rnd, "good a", "good b")
    rnd.submit("more")
    rnd.add_text(0, "partial")
    rnd.fail(0, "the model is unavailable")
    rnd.finish(1, "stop")
    assert rnd.phase is Phase.FAILED and rnd.last_prompt == "more"
    assert "**Error:** the model is unavailable" in rnd.sides[0].display()[-1]["content"]
    with pytest.raises(Refused, match="The last turn failed"):
        rnd.begin_vote("model_b")
    assert rnd.can_regenerate and rnd.can_send and not rnd.can_vote
    rnd.regenerate()  # both sides answer the failed turn again
    assert [m["content"] for m in rnd.sides[0].history()] == ["hi", "good a", "more"]
    assert [m["content"] for m in rnd.sides[1].history()] == ["hi", "good b", "more"]
    answer(rnd)
    rnd.begin_vote("model_a")  # the whole round, both turns, can now be voted on
    assert rnd.commit_vote() == "model_a"


def test_a_message_after_a_failed_turn_replaces_it() -> None:
    rnd = battle()
    for prompt in ("one", "two"):
        rnd.submit(prompt)
        if prompt == "one":
            answer(rnd)
    rnd.fail(0, "too long")
    rnd.fail(1, "too long")
    assert rnd.turns == 2 and rnd.kept_turns == 1 and rnd.can_send  # at the limit of 2
    rnd.submit("two, shorter")
    for side, first_answer in zip(rnd.sides, ("4", "four"), strict=True):
        assert [m["content"] for m in side.history()] == ["one", first_answer, "two, shorter"]
        assert side.error is None


def test_stopped_answers_stand_as_written() -> None:
    rnd = battle()
    rnd.submit("hi")
    rnd.add_text(0, "half")
    rnd.add_text(1, "four")
    rnd.finish(1, "stop")
    rnd.stop()
    assert rnd.phase is Phase.READY and rnd.sides[0].finish_reason == "stopped"
    assert rnd.sides[0].display()[-1]["content"] == "half\n\n*(stopped)*"
    assert rnd.sides[1].display()[-1]["content"] == "four"
    rnd.stop()  # nothing left to stop: no-op
    assert rnd.phase is Phase.READY


def test_display_marks_waiting_and_cut_off_answers() -> None:
    rnd = battle()
    rnd.submit("hi")
    started = rnd.sides[0].started_at
    assert rnd.sides[0].display(now=started + 3.2)[-1]["content"] == "*Thinking... 3 s*"
    rnd.add_text(0, "long answer")
    rnd.finish(0, "length")
    assert rnd.sides[0].display()[-1]["content"] == (
        "long answer\n\n*(cut off: the answer reached its length limit)*"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("What does <div> do?", "What does &lt;div> do?"),
        ("R&D", "R&amp;D"),
        ("![x](http://evil.example/p.png)", "!\\[x](http://evil.example/p.png)"),
        ("use `<b>` here", "use `<b>` here"),
        ("```html\n<div>\n```\n<p>", "```html\n<div>\n```\n&lt;p>"),
        ("unclosed ```\n<div>", "unclosed ```\n<div>"),
        ("> quoted **bold**", "> quoted **bold**"),
    ],
)
def test_text_is_shown_as_written(text: str, shown: str) -> None:
    assert as_written(text) == shown
    rnd = battle()
    rnd.submit(text)
    assert rnd.sides[0].display()[0]["content"] == shown


def test_a_failed_store_write_reopens_the_vote() -> None:
    rnd = battle()
    rnd.submit("hi")
    answer(rnd)
    rnd.begin_vote("model_a")
    rnd.abort_vote()
    assert rnd.phase is Phase.READY and rnd.vote is None
    rnd.begin_vote("model_b")
    assert rnd.commit_vote() == "model_b"


def test_after_the_vote_input_is_closed() -> None:
    rnd = battle()
    rnd.submit("hi")
    answer(rnd)
    rnd.begin_vote("tie (bothbad)")
    rnd.commit_vote()
    assert not (rnd.can_send or rnd.can_regenerate or rnd.can_vote)
    with pytest.raises(Refused, match="You voted, so this round is over"):
        rnd.submit("more")
    with pytest.raises(Refused, match="round is over"):
        rnd.regenerate()


def test_sending_while_generating_is_refused() -> None:
    rnd = battle()
    rnd.submit("hi")
    with pytest.raises(Refused, match="Wait until both answers have finished"):
        rnd.submit("again")


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("   ", "Type a message first"),
        ("x" * 51, "Your message has 51 characters; the limit is 50"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(prompt: str, message: str) -> None:
    rnd = battle()
    with pytest.raises(Refused, match=message):
        rnd.submit(prompt)
    assert rnd.phase is Phase.EMPTY and rnd.sides[0].messages == []


def test_turn_limit() -> None:
    rnd = battle()
    for prompt in ("one", "two"):
        rnd.submit(prompt)
        answer(rnd)
    assert rnd.turns == 2 and not rnd.can_send and rnd.can_vote
    with pytest.raises(Refused, match="limit of 2 turns"):
        rnd.submit("three")
    assert rnd.sides[0].history()[-1] == {"role": "assistant", "content": "4"}


def test_regenerate_replaces_both_last_answers() -> None:
    rnd = battle()
    with pytest.raises(Refused, match="no answer to regenerate"):
        rnd.regenerate()
    rnd.submit("hi")
    answer(rnd, "old a", "old b")
    rnd.regenerate()
    assert rnd.phase is Phase.GENERATING and rnd.regenerations == 1
    assert rnd.sides[0].history() == [{"role": "user", "content": "hi"}]
    answer(rnd, "new a", "new b")
    assert [m["content"] for m in rnd.sides[0].messages] == ["hi", "new a"]
    assert [m["content"] for m in rnd.sides[1].messages] == ["hi", "new b"]


def test_interrupted_generation_fails_the_open_sides() -> None:
    rnd = battle()
    rnd.submit("hi")
    rnd.finish(0, "stop")
    rnd.interrupt()
    assert rnd.phase is Phase.FAILED and rnd.sides[1].error == "the answer was interrupted"
    assert rnd.sides[0].error is None


def test_a_round_needs_two_different_models() -> None:
    with pytest.raises(ValueError):
        Round(("same", "same"), anonymous=True, limits=LIMITS)


def test_chat_can_go_on_after_a_failure() -> None:
    chat = Chat("m", LIMITS)
    chat.submit("first")
    chat.fail("boom")
    assert chat.phase is Phase.FAILED and chat.can_regenerate
    chat.submit("second")  # the failed exchange is dropped
    assert chat.side.history() == [{"role": "user", "content": "second"}]
    chat.add_text("ok")
    chat.finish("stop")
    chat.regenerate()
    chat.add_text("again")
    chat.finish("stop")
    assert chat.side.messages[-1]["content"] == "again" and chat.turns == 1
    chat.submit("third")
    with pytest.raises(Refused, match="Wait until the answer has finished"):
        chat.submit("fourth")
    chat.finish("stop")
    with pytest.raises(Refused, match="limit of 2 turns"):
        chat.submit("fourth")
