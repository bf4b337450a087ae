"""Compaction, pins and token counting in-process: the engine with a fake model that summarizes
when asked to (slowly or not at all, when a test says so), on a real file store."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from deskmate.engine import EngineError, ModelError, Settings
from deskmate.engine.compaction import INSTRUCTION
from deskmate.engine.history import SUMMARY_HEADING, summaries_of
from deskmate.engine.model_choice import WorkspaceModels
from deskmate.engine.tokens import CHARS_PER_TOKEN, TokenCounter, context_window, known_window
from deskmate.engine.tokens import load_encoding as real_load_encoding  # before conftest stubs it

from .test_handlers import wire  # noqa: F401  the in-process server fixture

LONG = "x" * 400  # about 100 tokens


def is_summary_request(messages) -> bool:
    return messages[0]["content"].startswith(INSTRUCTION)


@pytest.fixture
def summarizer(model, monkeypatch):
    """The fake model writes "SUMMARY of N messages" when asked for a summary; ``fail``,
    ``pause`` (seconds before the answer) and ``requests`` (the summary prompts) steer it."""
    state = type("Summarizer", (), {"fail": None, "pause": 0.0, "requests": []})()
    answer_stream = model.stream

    async def stream(messages, settings=None):
        if not is_summary_request(messages):
            async for item in answer_stream(messages, settings):
                yield item
            return
        state.requests.append((messages, settings))
        if state.pause:
            await asyncio.sleep(state.pause)
        if state.fail:
            raise ModelError(state.fail)
        lines = messages[1]["content"].count("\nUser: ") + messages[1]["content"].count("\nAssistant: ")
        yield f"SUMMARY of {lines} lines"

    monkeypatch.setattr(model, "stream", stream)
    return state


async def compacting(engine, **settings) -> None:
    settings = {"max_history_tokens": 300, **settings}
    base = dataclasses.replace(engine.settings, auto_compact=True, **settings)
    await engine.update_settings(base)


async def long_turns(engine, ref, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await engine.asks.ask(f"turn {n} {LONG}", ref=ref)


def sent_text(prompt) -> str:
    return "\n".join(m["content"] for m in prompt)


async def test_turns_that_no_longer_fit_are_summarized_and_kept_whole(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    await compacting(engine)
    result = await engine.asks.ask(f"turn 3 {LONG}", ref=ref)
    assert result.compacted is not None and result.compaction_error is None
    assert len(summarizer.requests) == 1  # one summarization for the ask
    stored = await engine.sessions.stored(ref.id)
    assert len(stored.messages) == 8  # nothing deleted
    assert [m.content for m in stored.messages[::2]] == [f"turn {n} {LONG}" for n in range(4)]
    (summary,) = summaries_of(stored.meta)
    assert summary.from_id == stored.messages[0].id and summary.text.startswith("SUMMARY")
    prompt = model.prompts[-1]
    assert SUMMARY_HEADING in prompt[0]["content"] and summary.text in prompt[0]["content"]
    covered = [m.id for m in stored.messages].index(summary.to_id)
    assert "turn 0" not in sent_text(prompt[1:])  # the summary stands for it
    assert covered >= 1 and stored.messages[covered].role == "assistant"


async def test_after_a_compaction_turns_go_on_without_another_until_half_the_budget_is_used(
    engine, model, summarizer
):
    ref = engine.sessions.resolve()
    await compacting(engine, max_history_tokens=600)
    turns = 0
    while not summarizer.requests:
        await long_turns(engine, ref, 1, start=turns)
        turns += 1
    assert turns == 7  # the first ask whose earlier turns (six of about 115 tokens) do not fit
    await long_turns(engine, ref, 2, start=turns)
    assert len(summarizer.requests) == 1  # the next turns fit beside the summary: no rewrite per turn


async def test_a_failing_summarizer_changes_nothing_and_the_ask_goes_on(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    notices: list[str] = []
    await compacting(engine)
    summarizer.fail = "Simulated error 500."
    before = await engine.sessions.stored(ref.id)
    result = await engine.asks.ask("short", ref=ref, on_notice=notices.append)
    assert result.answer == "fake answer" and result.compacted is None
    assert "could not be summarized" in result.compaction_error and "Nothing was changed" in notices[0]
    after = await engine.sessions.stored(ref.id)
    assert after.meta.summaries == [] and after.meta == before.meta
    assert len(after.messages) == len(before.messages) + 2
    assert "turn 2" in sent_text(model.prompts[-1])  # the recent turns that fit went along


async def test_a_slow_summarizer_holds_an_ask_no_longer_than_summary_timeout(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    await compacting(engine, summary_timeout=1.0)
    summarizer.pause = 30
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await engine.asks.ask("short", ref=ref)
    assert loop.time() - started < 5
    assert "longer than 1 s" in result.compaction_error and result.answer == "fake answer"
    assert (await engine.sessions.stored(ref.id)).meta.summaries == []
    assert len(summarizer.requests) == 1  # one try, not one per retry


async def test_manual_compaction_with_instructions_and_undo(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    done = await engine.compaction.compact(ref, "focus on the API decisions")
    messages, settings = summarizer.requests[-1]
    assert "focus on the API decisions" in messages[0]["content"]
    assert settings.model == engine.settings.model and settings.max_tokens is not None
    stored = await engine.sessions.stored(ref.id)
    assert done.summary.from_id == stored.messages[0].id
    assert done.summary.to_id == stored.messages[3].id  # up to the latest turn, which stays
    assert "turn 2" not in messages[1]["content"]
    await engine.asks.ask("next", ref=ref)
    assert done.summary.text in model.prompts[-1][0]["content"]
    assert "turn 0" not in sent_text(model.prompts[-1]) and "turn 2" in sent_text(model.prompts[-1])
    await engine.compaction.uncompact(ref.id, done.summary.id)
    assert (await engine.sessions.stored(ref.id)).meta.summaries == []
    await engine.asks.ask("again", ref=ref)
    assert "turn 0" in sent_text(model.prompts[-1]) and SUMMARY_HEADING not in sent_text(model.prompts[-1])
    with pytest.raises(EngineError, match='has no summary "nope"'):
        await engine.compaction.uncompact(ref.id, "nope")


async def test_a_summary_model_writes_summaries_when_set(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 2)
    await engine.update_settings(dataclasses.replace(engine.settings, summary_model="small-model"))
    done = await engine.compaction.compact(ref)
    assert summarizer.requests[-1][1].model == "small-model" and done.summary.model == "small-model"


async def test_summaries_are_written_by_the_model_chosen_for_the_folder(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 2)
    WorkspaceModels(engine.store.data_dir).set(ref.workspace_uri, "folder-model")
    await engine.compaction.compact(ref)
    assert summarizer.requests[-1][1].model == "folder-model"
    await long_turns(engine, ref, 3, start=2)
    await compacting(engine)
    result = await engine.asks.ask("short", ref=ref)
    assert result.compacted is not None and result.compacted.summary.model == "folder-model"
    assert summarizer.requests[-1][1].model == "folder-model"


async def test_an_ask_does_not_wait_for_a_compaction_already_running(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    await compacting(engine, summary_timeout=30.0)
    summarizer.pause = 2
    manual = asyncio.ensure_future(engine.compaction.compact(ref))
    while not summarizer.requests:  # the on-demand summary is being written
        await asyncio.sleep(0.01)
    result = await engine.asks.ask("short", ref=ref)
    assert not manual.done()  # the ask did not wait for it
    assert "being written already" in result.compaction_error and result.answer == "fake answer"
    assert len(summarizer.requests) == 1  # and wrote no second one
    done = await manual
    assert (await engine.sessions.stored(ref.id)).meta.summaries[-1]["id"] == done.summary.id


async def test_a_later_summary_folds_in_the_earlier_one_and_undo_falls_back_to_it(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 2)
    first = await engine.compaction.compact(ref)
    await long_turns(engine, ref, 2, start=2)
    second = await engine.compaction.compact(ref)
    assert "Earlier summary:\n" + first.summary.text in summarizer.requests[-1][0][1]["content"]
    assert second.summary.from_id == first.summary.from_id
    session = (await engine.sessions.get(ref)).session
    assert [s.id for s in summaries_of(session.meta)] == [first.summary.id, second.summary.id]
    await engine.compaction.uncompact(ref.id, second.summary.id)
    await engine.asks.ask("next", ref=ref)
    assert first.summary.text in model.prompts[-1][0]["content"]


async def test_nothing_to_compact_is_said(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await engine.asks.ask("only one", ref=ref)
    with pytest.raises(EngineError, match="nothing to compact"):
        await engine.compaction.compact(ref)


async def test_pinned_messages_are_always_sent_in_order_and_never_summarized(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await engine.asks.ask("RULE: always use tabs", ref=ref)
    await long_turns(engine, ref, 3)
    rule = (await engine.sessions.stored(ref.id)).messages[0]
    info = await engine.compaction.pin(ref, rule.id, True)
    assert info.meta.pinned_messages == [rule.id]
    await compacting(engine)
    await engine.asks.ask(f"turn 3 {LONG}", ref=ref)
    assert summarizer.requests and "RULE" not in summarizer.requests[-1][0][1]["content"]
    prompt = model.prompts[-1]
    assert prompt[1] == {"role": "user", "content": "RULE: always use tabs"}  # right after the system
    await engine.compaction.pin(ref, rule.id, False)
    await engine.asks.ask("short", ref=ref)
    assert "RULE" not in sent_text(model.prompts[-1])
    with pytest.raises(EngineError, match='has no message "nope"'):
        await engine.compaction.pin(ref, "nope", True)


async def test_pins_that_cannot_fit_the_window_are_named(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await engine.asks.ask("big " + "y" * 2400, ref=ref)
    big = (await engine.sessions.stored(ref.id)).messages[0]
    await engine.compaction.pin(ref, big.id, True)
    model.window = 800
    with pytest.raises(ModelError, match="Unpin some messages"):
        await engine.asks.ask("q", ref=ref)


async def test_the_prompt_never_exceeds_the_context_window_setting(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 6)
    await engine.update_settings(dataclasses.replace(engine.settings, context_window=700, max_tokens=100))
    await engine.asks.ask(f"now {LONG}", ref=ref)
    sent = sum(len(m["content"]) for m in model.prompts[-1]) / CHARS_PER_TOKEN
    assert sent <= 700 * 0.8 - 100
    preview = await engine.asks.next_prompt((await engine.sessions.get(ref)).session, ref)
    assert preview.context_window == 700 and preview.tokens <= preview.limit


async def test_next_prompt_reports_tokens_and_what_is_summarized(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    session = (await engine.sessions.get(ref)).session
    before = await engine.asks.next_prompt(session, ref)
    assert before.summarized == 0 and before.left_out == 0 and before.tokens > 300
    await engine.compaction.compact(ref)
    session = (await engine.sessions.get(ref)).session
    after = await engine.asks.next_prompt(session, ref)
    assert after.summarized == 4 and after.tokens < before.tokens


# -- token counting ---------------------------------------------------------------


def test_counts_are_calibrated_by_the_usage_the_server_reports(monkeypatch):
    from deskmate.engine import Settings

    settings = Settings(model="local", base_url="http://127.0.0.1:1/v1")
    counter = TokenCounter()
    text = "a" * 1000
    assert counter.text(settings, text) == 250 and counter.method(settings) == "estimated"
    prompt = [{"role": "user", "content": text}]
    counter.calibrate(settings, prompt, 500 + 4)  # the server counts 2 characters a token
    assert counter.text(settings, text) == 500 and counter.method(settings) == "calibrated"
    counter.calibrate(settings, prompt, 250 + 4)  # sparser now: moves back only part way
    assert 250 < counter.text(settings, text) < 500
    counter.calibrate(settings, [{"role": "user", "content": "hi"}], 50)  # too short to learn from
    assert 250 < counter.text(settings, text) < 500


def test_a_missing_tiktoken_file_degrades_to_the_estimate_without_a_download(monkeypatch, tmp_path):
    tiktoken_load = pytest.importorskip("tiktoken.load")
    from deskmate.engine import Settings

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty: tiktoken would download

    def offline(blobpath: str) -> bytes:
        raise ConnectionError(f"no internet for {blobpath}")

    monkeypatch.setattr(tiktoken_load, "read_file", offline)
    counter = TokenCounter(real_load_encoding)  # tiktoken's own loading, which finds no file
    settings = Settings(model="gpt-4o")
    assert counter.text(settings, "a" * 400) == 100  # asked while loading: the estimate
    counter.wait_loaded()
    assert counter.method(settings) == "estimated" and counter.text(settings, "a" * 400) == 100


def test_tiktoken_counts_openai_models_once_its_encoding_is_loaded():
    tiktoken = pytest.importorskip("tiktoken")
    from deskmate.engine import Settings

    ranks = {bytes([b]): b for b in range(256)}  # a byte-level encoding made here: nothing fetched
    encoding = tiktoken.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    loaded: list[str] = []

    def loader(name: str):
        loaded.append(name)
        return lambda text: len(encoding.encode(text))

    counter = TokenCounter(loader)
    openai = Settings(model="gpt-4o")
    counter.text(openai, "warm up")
    counter.wait_loaded()
    assert loaded == ["o200k_base"] and counter.method(openai) == "tiktoken"
    assert counter.text(openai, "abcd" * 10) == 40  # one token a byte, as this encoding counts
    local = Settings(model="gpt-4o", base_url="http://127.0.0.1:8080/v1")  # a local server's gpt-4o
    assert counter.method(local) == "estimated"


async def test_cancelling_an_ask_while_it_summarizes_stores_no_summary(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    await compacting(engine)
    summarizer.pause = 30
    asking = asyncio.ensure_future(engine.asks.ask("short", ref=ref, ask_id="a1"))
    while not summarizer.requests:
        await asyncio.sleep(0.01)
    assert engine.asks.cancel("a1")
    result = await asyncio.wait_for(asking, 5)
    assert result.interrupted and "cancelled" in result.compaction_error
    stored = await engine.sessions.stored(ref.id)
    assert stored.meta.summaries == [] and stored.messages[-2].content == "short"


async def test_turns_too_long_for_the_summarizing_model_are_named_and_nothing_changes(
    engine, model, summarizer
):
    ref = engine.sessions.resolve()
    await engine.asks.ask("huge " + "z" * 4000, ref=ref)
    await engine.asks.ask("short", ref=ref)
    await engine.update_settings(dataclasses.replace(engine.settings, context_window=600))
    with pytest.raises(EngineError, match="longer than model 'gpt-4o-mini' can read at once"):
        await engine.compaction.compact(ref)
    assert summarizer.requests == [] and (await engine.sessions.stored(ref.id)).meta.summaries == []


async def test_the_answer_to_a_pinned_question_is_no_reason_to_compact(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await compacting(engine, max_history_tokens=8000)
    await engine.asks.ask("RULE: tabs", ref=ref)
    rule = (await engine.sessions.stored(ref.id)).messages[0]
    await engine.compaction.pin(ref, rule.id, True)
    await engine.asks.ask("second", ref=ref)
    await engine.asks.ask("third", ref=ref)
    assert summarizer.requests == []  # everything fits: nothing is summarized
    assert [m["content"] for m in model.prompts[-1][1:]] == [
        "RULE: tabs",
        "fake answer",
        "second",
        "fake answer",
        "third",
    ]


async def test_a_fork_keeps_the_pins_and_summaries_within_what_it_copies(engine, model, summarizer):
    ref = engine.sessions.resolve()
    await long_turns(engine, ref, 3)
    stored = await engine.sessions.stored(ref.id)
    first, third_question = stored.messages[0], stored.messages[4]
    await engine.compaction.pin(ref, first.id, True)
    await engine.compaction.pin(ref, third_question.id, True)
    done = await engine.compaction.compact(ref)  # covers messages 0..3
    assert done.summary.to_id == stored.messages[3].id

    after, _ = await engine.forks.fork(ref, stored.messages[5].id)  # all of it
    assert after.meta.pinned_messages == [first.id, third_question.id]
    assert [s["id"] for s in after.meta.summaries] == [done.summary.id]
    await engine.asks.ask("in the fork", ref=engine.sessions.resolve())
    assert done.summary.text in model.prompts[-1][0]["content"]  # the fork's ask is as short

    before, _ = await engine.forks.fork(ref, stored.messages[1].id)  # inside the summary's range
    assert before.meta.pinned_messages == [first.id] and before.meta.summaries == []
    assert (await engine.sessions.stored(before.id)).meta.pinned_messages == [first.id]


async def test_a_cancelled_compact_session_answers_request_cancelled_and_stores_nothing(
    wire,  # noqa: F811
    model,
    summarizer,
):
    for n in range(3):
        await wire.command("deskmate.ask", {"question": f"turn {n} {LONG}"})
    summarizer.pause = 30
    compacting = wire.start_command("deskmate.compactSession")
    while not summarizer.requests:
        await asyncio.sleep(0.01)
    wire.notify("$/cancelRequest", {"id": compacting})
    reply = await wire.reply(compacting)
    assert reply["error"]["code"] == -32800  # RequestCancelled, as docs/protocol.md says
    assert (await wire.command("deskmate.getSession", {}))["result"]["summaries"] == []


async def test_the_window_comes_from_the_setting_then_the_server_then_the_models_name(model):
    assert [known_window(name) for name in ("openai/GPT-4o-mini", "gpt-4-32k", "gpt-4", "o3-mini")] == [
        128_000,
        32_768,
        8_192,
        200_000,
    ]
    assert known_window("qwen2.5-coder:7b") is None  # a local model: its server says, or nobody
    named = Settings(model="gpt-4o")
    model.report_window = False
    assert await context_window(named, model) == 128_000
    model.report_window, model.window = True, 4096
    assert await context_window(named, model) == 4096  # what the server serves wins over the name
    assert await context_window(dataclasses.replace(named, context_window=2048), model) == 2048
    model.window = None
    assert await context_window(Settings(model="llama3"), model) is None
