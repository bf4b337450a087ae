"""A small local model through the real daemon: its context window is learned and never
exceeded, a refused prompt is retried smaller, a cut answer says so, a failure mid-answer
is kept with its reason."""

from __future__ import annotations

import pytest
from test_errors import REQUEST_FAILED, expect_error

from helpers import stored_messages
from model_server import SUMMARY_MARK, ModelServer

WINDOW = 400
CUT_OFF = "(cut off at the length limit)"


def long_question(n: int) -> str:
    return f"turn{n}:" + "x" * 480  # about 120 tokens, and an answer of a few words


def prompt_tokens(body: dict) -> int:
    return sum(len(m["content"]) for m in body["messages"]) // 4


@pytest.mark.parametrize("flavor", ["llama.cpp", "ollama"])
async def test_a_reported_window_is_never_exceeded(start_daemon, project, flavor):
    with ModelServer(context_window=WINDOW, flavor=flavor) as small:
        daemon = await start_daemon(folders=[project], settings={"baseUrl": small.base_url})
        answers = [(await daemon.ask(long_question(n)))["answer"] for n in range(3)]
        assert all(answer.startswith("You asked: turn") for answer in answers), answers
        asked = [body for body in small.requests if SUMMARY_MARK not in body["messages"][0]["content"]]
        assert len(asked) == 3  # none refused, none retried (beside them: summaries of earlier turns)
        assert all(prompt_tokens(body) <= WINDOW for body in small.requests)


async def test_a_refused_prompt_is_sent_once_more_with_less_history(start_daemon, project):
    with ModelServer(context_window=WINDOW, flavor="none") as small:  # refuses, reports nothing
        daemon = await start_daemon(folders=[project], settings={"baseUrl": small.base_url})
        await daemon.ask(long_question(1))
        result = await daemon.ask(long_question(2))
        assert result["answer"].startswith("You asked: turn2") and not result["interrupted"]
        first, refused, retried = small.requests
        assert prompt_tokens(refused) > WINDOW >= prompt_tokens(retried)
        assert "turn1" in str(refused["messages"]) and "turn1" not in str(retried["messages"])


async def test_a_question_longer_than_the_window_says_what_to_do(start_daemon, project):
    with ModelServer(context_window=WINDOW) as small:
        daemon = await start_daemon(folders=[project], settings={"baseUrl": small.base_url})
        await expect_error(
            daemon.ask("y" * 4000),
            REQUEST_FAILED,
            "do not fit the context window",
            "(400 tokens)",
            "--ctx-size",
        )
        assert small.requests == []


async def test_an_answer_cut_at_the_length_limit_says_so_live_and_after_reload(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("[[tokens:10]] [[length:3]]", askId="cut")
    shown = "".join(d["delta"] for d in daemon.deltas_of("cut"))
    assert shown == result["answer"] == "t0 t1 t2 \n\n" + CUT_OFF
    await daemon.stop()
    again = await start_daemon(folders=[project])
    stored = (await stored_messages(again, result["sessionId"]))[-1]
    assert stored["content"] == shown
