"""Compaction, pins and token accounting through the real daemon and the test model server
(which reports usage), on every store: automatic and manual summaries, undo, pins surviving
compaction, the budget never exceeded, a slow and a failing summarizer."""

from __future__ import annotations

import time

from test_errors import REQUEST_FAILED, expect_error

from model_server import SUMMARY_MARK, ModelServer

LONG = "x" * 400  # about 100 tokens


def question(n: int) -> str:
    return f"turn{n} {LONG}"


def answers_only(requests: list[dict]) -> list[dict]:
    return [body for body in requests if SUMMARY_MARK not in body["messages"][0]["content"]]


def summary_requests(requests: list[dict]) -> list[dict]:
    return [body for body in requests if SUMMARY_MARK in body["messages"][0]["content"]]


def sent(body: dict) -> str:
    return "\n".join(m["content"] for m in body["messages"])


async def test_automatic_compaction_keeps_every_message_and_survives_a_restart(
    start_daemon, project, store_settings
):
    with ModelServer() as server:
        settings = {**store_settings, "baseUrl": server.base_url, "maxHistoryTokens": 300}
        daemon = await start_daemon(folders=[project], settings=settings)
        results = [await daemon.ask(question(n)) for n in range(4)]
        compacted = [r["compacted"] for r in results if "compacted" in r]
        assert len(compacted) == 1 and "compactionError" not in results[-1]
        summary = compacted[0]
        assert summary["summary"].startswith("Summary of ") and "turn0" in summary["summary"]
        last = answers_only(server.requests)[-1]
        assert summary["summary"] in last["messages"][0]["content"]  # the system message holds it
        assert question(0) not in sent(last)  # not sent again

        async def check(client) -> None:
            session = await client.run("deskmate.getSession", {})
            assert [m["content"] for m in session["messages"][::2]] == [question(n) for n in range(4)]
            (stored,) = session["summaries"]
            assert stored["summaryId"] == summary["summaryId"] and stored["active"] is True
            assert stored["covers"] == summary["covers"]
            assert stored["covers"]["fromMessageId"] == session["messages"][0]["id"]
            assert session["nextAsk"]["summarizedMessages"] == stored["messageCount"]
            assert session["nextAskTokens"] == session["nextAsk"]["tokens"] > 0
            exported = await client.run("deskmate.exportSession", {})
            assert "turn0" in exported["markdown"]  # listings and exports show the originals
            listed = (await client.run("deskmate.listSessions", {}))["sessions"]
            assert listed[0]["messageCount"] == 8

        await check(daemon)
        session = await daemon.run("deskmate.getSession", {})
        assert session["nextAsk"]["countedBy"] == "calibrated"  # the server reported usage
        await daemon.stop()
        await check(await start_daemon(folders=[project], settings=settings))


async def test_manual_compaction_undo_and_pins_survive_on_every_store(start_daemon, project, store_settings):
    with ModelServer() as server:
        settings = {**store_settings, "baseUrl": server.base_url, "autoCompact": False}
        daemon = await start_daemon(folders=[project], settings=settings)
        rule = await daemon.ask("RULE: answer in French")
        for n in range(3):
            await daemon.ask(question(n))
        session = await daemon.run("deskmate.getSession", {})
        session_id, ids = session["sessionId"], [m["id"] for m in session["messages"]]
        pinned = await daemon.run(
            "deskmate.pinMessage", {"sessionId": session_id, "messageId": ids[0], "pinned": True}
        )
        assert pinned == {
            "sessionId": session_id,
            "messageId": ids[0],
            "pinned": True,
            "pinnedMessages": [ids[0]],
        }
        before = (await daemon.run("deskmate.getSession", {}))["nextAskTokens"]
        done = await daemon.run("deskmate.compactSession", {"instructions": "focus on the API decisions"})
        assert done["sessionId"] == session_id == rule["sessionId"]
        assert done["covers"] == {"fromMessageId": ids[0], "toMessageId": ids[5]}  # the latest turn stays
        request = summary_requests(server.requests)[-1]
        assert "focus on the API decisions" in request["messages"][0]["content"]
        assert "User: RULE" not in request["messages"][1]["content"]  # pinned: sent as it is, not summarized
        after = await daemon.run("deskmate.getSession", {})
        assert after["nextAskTokens"] < before
        assert [m.get("pinned", False) for m in after["messages"]][:2] == [True, False]

        await daemon.ask("next")
        last = answers_only(server.requests)[-1]["messages"]
        assert done["summary"] in last[0]["content"] and last[1]["content"] == "RULE: answer in French"
        assert question(0) not in sent({"messages": last}) and question(2) in sent({"messages": last})
        await daemon.stop()

        daemon = await start_daemon(folders=[project], settings=settings)  # all of it was stored
        held = await daemon.run("deskmate.getSession", {})
        assert held["pinnedMessages"] == [ids[0]] and held["summaries"][0]["summaryId"] == done["summaryId"]
        undone = await daemon.run(
            "deskmate.uncompactSession", {"sessionId": session_id, "summaryId": done["summaryId"]}
        )
        assert undone["removed"] is True
        assert (await daemon.run("deskmate.getSession", {}))["summaries"] == []
        await daemon.ask("again")
        last = answers_only(server.requests)[-1]
        assert question(0) in sent(last) and done["summary"] not in sent(last)
        await expect_error(
            daemon.run(
                "deskmate.uncompactSession", {"sessionId": session_id, "summaryId": done["summaryId"]}
            ),
            REQUEST_FAILED,
            "has no summary",
        )


async def test_the_window_is_never_exceeded_by_a_densely_counting_model(start_daemon, project):
    window = 1200
    with ModelServer(context_window=window, chars_per_token=2.5) as dense:  # counts like code
        daemon = await start_daemon(folders=[project], settings={"baseUrl": dense.base_url})
        for n in range(8):
            result = await daemon.ask(question(n))
            assert not result["interrupted"] and "compactionError" not in result
        for body in dense.requests:
            assert sum(len(m["content"]) for m in body["messages"]) / 2.5 <= window
        assert len(answers_only(dense.requests)) == 8  # none refused: the counts were calibrated
        assert summary_requests(dense.requests)  # earlier turns were summarized, not just dropped
        session = await daemon.run("deskmate.getSession", {})
        assert session["nextAsk"]["contextWindow"] == window
        assert session["nextAsk"]["tokens"] <= session["nextAsk"]["limit"]


async def test_a_failing_summarizer_changes_nothing_and_says_so(start_daemon, project):
    with ModelServer() as server:
        settings = {"baseUrl": server.base_url, "maxHistoryTokens": 300}
        daemon = await start_daemon(folders=[project], settings=settings)
        server.summary_fail = 500
        results = [await daemon.ask(question(n)) for n in range(3)]
        failed = [r for r in results if "compactionError" in r]
        assert failed and all(r["answer"].startswith("You asked: turn") for r in results)
        assert "could not be summarized" in failed[0]["compactionError"] and "compacted" not in failed[0]
        warned = [m.message for m in daemon.client.messages if "could not be summarized" in m.message]
        assert warned and "Nothing was changed" in warned[0]
        session = await daemon.run("deskmate.getSession", {})
        assert session["summaries"] == [] and len(session["messages"]) == 6
        assert session["nextAsk"]["leftOutMessages"] > 0  # what the next ask will summarize
        server.summary_fail = None
        result = await daemon.ask("short")  # the next ask tries once more, and succeeds
        assert "compacted" in result


async def test_a_slow_summarizer_holds_an_ask_no_longer_than_summary_timeout(start_daemon, project):
    with ModelServer() as server:
        settings = {"baseUrl": server.base_url, "maxHistoryTokens": 300, "summaryTimeout": 1}
        daemon = await start_daemon(folders=[project], settings=settings)
        server.summary_delay = 20
        for n in range(3):
            started = time.monotonic()
            result = await daemon.ask(question(n))
            if "compactionError" in result:
                break
        assert time.monotonic() - started < 6
        assert "longer than 1 s" in result["compactionError"]
        assert len(summary_requests(server.requests)) == 1  # one summarization, never a second
        assert (await daemon.run("deskmate.getSession", {}))["summaries"] == []


async def test_bad_arguments_name_the_field(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    await daemon.ask("one")
    session = await daemon.run("deskmate.getSession", {})
    await expect_error(
        daemon.run("deskmate.pinMessage", {"sessionId": session["sessionId"], "messageId": "m"}),
        -32602,
        '"pinned" is required',
    )
    await expect_error(
        daemon.run(
            "deskmate.pinMessage", {"sessionId": session["sessionId"], "messageId": "nope", "pinned": True}
        ),
        REQUEST_FAILED,
        'has no message "nope"',
    )
    await expect_error(daemon.run("deskmate.compactSession", {}), REQUEST_FAILED, "nothing to compact")
