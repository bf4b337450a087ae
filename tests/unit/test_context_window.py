"""A model with a small context window: the prompt fits what it reports, a refusal is retried
once with less history, and an answer cut at the length limit says so."""

from __future__ import annotations

import pytest

from deskmate.engine import ModelError
from deskmate.engine.asking import CUT_OFF_NOTE

LONG = "x" * 400  # about 100 tokens


def prompt_tokens(prompt: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in prompt) // 4


async def three_long_turns(engine, ref) -> None:
    for n in range(3):
        await engine.asks.ask(f"turn {n} {LONG}", ref=ref)


async def test_the_prompt_never_exceeds_a_reported_window(engine, model):
    ref = engine.sessions.resolve()
    await three_long_turns(engine, ref)  # no window yet: all of it goes along
    model.window = 600
    result = await engine.asks.ask(f"now {LONG}", ref=ref)
    sent = model.prompts[-1]
    assert not result.interrupted and len(model.prompts) == 4  # refused never: no retry needed
    assert prompt_tokens(sent) <= 600 * 0.8
    assert sent[-1]["content"] == f"now {LONG}" and "turn 2" in sent[-3]["content"]
    assert "turn 0" not in str(sent)  # the oldest turn did not fit


async def test_a_refused_prompt_is_retried_once_with_less_history(engine, model):
    ref = engine.sessions.resolve()
    await three_long_turns(engine, ref)
    model.window, model.report_window = 250, False  # refuses, but says nothing of its size
    result = await engine.asks.ask("short", ref=ref)
    assert result.answer == "fake answer" and not result.interrupted
    refused, retried = model.prompts[-2:]
    assert prompt_tokens(refused) > 250 >= prompt_tokens(retried)
    assert retried[-1]["content"] == "short" and len(retried) < len(refused)


async def test_a_question_too_long_for_the_window_says_what_to_do(engine, model):
    ref = engine.sessions.resolve()
    model.window = 100
    with pytest.raises(ModelError, match=r"do not fit the context window .*\(100 tokens\).*--ctx-size"):
        await engine.asks.ask("q " + "y" * 2000, ref=ref)
    assert model.prompts == []  # never sent: it could not fit


async def test_a_conversation_still_refused_after_the_retry_names_the_setting(engine, model):
    ref = engine.sessions.resolve()
    await three_long_turns(engine, ref)
    model.answer, model.finish = "", "length"  # every prompt fills the window: empty answers
    with pytest.raises(ModelError, match=r"maxHistoryTokens \(now 8000\)"):
        await engine.asks.ask("again", ref=ref)
    assert len(model.prompts) == 5  # the three turns, then one ask and its one retry
    assert len(model.prompts[-1]) < len(model.prompts[-2])


async def test_an_answer_cut_at_the_length_limit_ends_with_a_note(engine, model):
    ref = engine.sessions.resolve()
    model.answer, model.finish = "the start of", "length"
    seen: list[str] = []
    result = await engine.asks.ask("q", ref=ref, on_delta=seen.append)
    assert result.answer == "the start of" + CUT_OFF_NOTE == "".join(seen)
    stored = (await engine.sessions.get(ref)).session.messages[-1]
    assert stored.content.endswith("(cut off at the length limit)")
