"""Streaming, cancelling, concurrency and context of deskmate.ask against the real daemon."""

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from helpers import eventually, stored_messages


async def wait_for_deltas(daemon, ask_id, count, timeout=10.0):
    for _ in range(int(timeout / 0.02)):
        if len(daemon.deltas_of(ask_id)) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(daemon.deltas_of(ask_id))} deltas arrived")


async def test_deltas_arrive_in_order_and_make_the_answer(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    # 300 chunks about 1 ms apart: the first goes out alone, then one delta per 16 ms window.
    result = await daemon.ask("[[tokens:300]] [[rate:1000]]", askId="ordered")
    deltas = daemon.deltas_of("ordered")
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert deltas[0]["delta"] == "t0 "
    assert "".join(d["delta"] for d in deltas) == result["answer"] == "".join(f"t{i} " for i in range(300))
    assert 1 < len(deltas) < 300, "chunks arriving within the window were not coalesced"
    assert all(d["sessionId"] == result["sessionId"] for d in deltas)
    assert result["usage"]["completionTokens"] == 300 and result["interrupted"] is False
    stored = (await stored_messages(daemon, result["sessionId"]))[-1]
    assert stored["content"] == result["answer"]


async def test_a_zero_delta_window_sends_every_chunk_on_its_own(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"deltaWindowMs": 0})
    result = await daemon.ask("[[tokens:300]]", askId="each")
    deltas = daemon.deltas_of("each")
    assert [d["index"] for d in deltas] == list(range(300))
    assert [d["delta"] for d in deltas] == [f"t{i} " for i in range(300)]
    assert "".join(d["delta"] for d in deltas) == result["answer"]


async def test_progress_is_reported_when_the_client_supports_it(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    await daemon.ask("[[tokens:20]] [[rate:40]]", askId="progress")
    reports = daemon.client.progress_reports["deskmate-ask-progress"]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable is True
    assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message == "Done"
    # quick answers end before the client has acknowledged their progress: no errors from that
    for i in range(20):
        await daemon.ask(f"quick {i}")
    errors = [m.message for m in daemon.client.log_messages if m.type == types.MessageType.Error]
    assert errors == []


async def test_no_progress_for_clients_without_support(start_daemon, project):
    daemon = await start_daemon(folders=[project], capabilities=types.ClientCapabilities())
    result = await daemon.ask("hi", askId="np")
    assert result["answer"] and daemon.client.progress_reports.get("deskmate-ask-np") in (None, [])


async def test_cancel_mid_stream_keeps_the_partial_answer(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    asking = asyncio.ensure_future(daemon.ask("[[tokens:500]] [[rate:50]]", askId="slow"))
    await wait_for_deltas(daemon, "slow", 5)
    assert await daemon.run("deskmate.cancel", {"askId": "slow"}) == {"cancelled": True}
    result = await asking
    assert result["interrupted"] is True
    shown = "".join(d["delta"] for d in daemon.deltas_of("slow"))
    assert result["answer"] == shown and 0 < len(shown) < len("t0 ") * 500
    answer = (await stored_messages(daemon, result["sessionId"]))[-1]
    assert answer["status"] == "interrupted" and answer["content"] == shown
    assert await daemon.run("deskmate.cancel", {"askId": "slow"}) == {"cancelled": False}
    # the session is free again
    assert "I see 2 earlier messages" in (await daemon.ask("next"))["answer"]


async def test_cancel_request_stops_the_ask_and_keeps_the_partial_answer(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    protocol = daemon.client.protocol
    params = types.ExecuteCommandParams(
        command="deskmate.ask", arguments=[{"question": "[[tokens:500]] [[rate:50]]", "askId": "rq"}]
    )
    request = asyncio.ensure_future(
        protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND, params, msg_id="ask-request-1")
    )
    await wait_for_deltas(daemon, "rq", 5)
    protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="ask-request-1"))
    with pytest.raises(JsonRpcException, match="cancel"):
        await request
    session_id = daemon.deltas_of("rq")[0]["sessionId"]

    async def both_stored():
        session = await daemon.run("deskmate.getSession", {"sessionId": session_id})
        return session["persisted"] and len(session["messages"]) == 2 and session["messages"]

    messages = await eventually(both_stored, timeout=5)
    assert messages[-1]["status"] == "interrupted" and messages[-1]["content"].startswith("t0 t1 t2 t3 t4 ")
    assert len(messages[-1]["content"]) < len("t0 ") * 500


async def test_cancelling_the_progress_cancels_the_ask(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    asking = asyncio.ensure_future(daemon.ask("[[tokens:500]] [[rate:50]]", askId="pc"))
    token = "deskmate-ask-pc"
    # Up to 20 s: the first ask imports the model client, slow on a loaded machine.
    await eventually(
        lambda: daemon.client.progress_reports.get(token) and len(daemon.deltas_of("pc")) > 2, timeout=20
    )
    daemon.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(asking, 10)
    assert result["interrupted"] is True
    assert daemon.client.progress_reports[token][-1].message == "Cancelled"


async def test_a_model_slow_to_its_first_token_still_gets_a_cancellable_progress(start_daemon, project):
    # The progress is created after the first delta, or after 0.1 s without one.
    daemon = await start_daemon(folders=[project])
    asking = asyncio.ensure_future(daemon.ask("[[hang]] thinking", askId="slowstart"))
    token = "deskmate-ask-slowstart"
    await eventually(
        lambda: daemon.client.progress_reports.get(token), timeout=20
    )  # the first ask imports the model client: slow on a loaded machine
    assert daemon.deltas_of("slowstart") == []
    daemon.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(asking, 10)
    assert result["interrupted"] is True and result["answer"] == ""
    assert daemon.client.progress_reports[token][-1].message == "Cancelled"


async def test_a_second_ask_in_a_busy_session_is_refused(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    first = asyncio.ensure_future(daemon.ask("[[tokens:100]] [[rate:50]]", askId="busy"))
    await wait_for_deltas(daemon, "busy", 1)
    with pytest.raises(JsonRpcException, match="still answering another question") as caught:
        await daemon.ask("me too")
    assert caught.value.code == -32803
    await daemon.run("deskmate.cancel", {"askId": "busy"})
    await first


async def test_asks_in_different_sessions_run_side_by_side(start_daemon, project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    daemon = await start_daemon(folders=[project, other])
    a, b = await asyncio.gather(
        daemon.ask("[[tokens:20]] [[rate:20]] first", askId="A", workspaceUri=project.as_uri()),
        daemon.ask("[[tokens:20]] [[rate:20]]", askId="B", workspaceUri=other.as_uri()),
    )
    # Both streams last about a second; side by side, their deltas arrive interleaved.
    order = [d["askId"] for d in daemon.deltas]
    assert order.index("B") < len(order) - 1 - order[::-1].index("A"), "B started only after A ended"
    assert order.index("A") < len(order) - 1 - order[::-1].index("B"), "A started only after B ended"
    assert a["sessionId"] != b["sessionId"]
    # never mixed: each ask's deltas carry its own session and text
    assert {d["sessionId"] for d in daemon.deltas_of("A")} == {a["sessionId"]}
    assert "".join(d["delta"] for d in daemon.deltas_of("B")) == b["answer"]


async def test_context_selection_is_read_from_the_open_document(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    uri = (project / "main.py").as_uri()
    unsaved = "def add(a, b):\n    return a - b  # edited, not saved\n"
    daemon.client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=unsaved)
        )
    )
    model_server.clear_requests()
    selection = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 16}}
    result = await daemon.ask("Is this right?", context={"uri": uri, "range": selection})
    prompt = model_server.requests[-1]["messages"][-1]["content"]
    assert prompt.startswith("Is this right?")
    assert str(project / "main.py") in prompt and "line 2" in prompt and "(python)" in prompt
    assert "    return a - b\n" in prompt and "def add" not in prompt
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    question = session["messages"][0]
    assert question["content"] == "Is this right?" and question["context"]["text"] == "    return a - b"


async def test_history_sent_is_trimmed_but_the_stored_history_stays_whole(
    start_daemon, project, model_server
):
    daemon = await start_daemon(folders=[project], settings={"maxHistoryTokens": 60})
    for i in range(6):
        await daemon.ask(f"question number {i} " + "padding " * 10)
    sent = model_server.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and sent[1]["role"] == "user"
    assert len(sent) < 12
    session = await daemon.run("deskmate.getSession", {})
    assert len(session["messages"]) == 12


async def test_system_prompt_and_temperature_reach_the_model(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project], settings={"systemPrompt": "Be terse.", "temperature": 0.2})
    model_server.clear_requests()
    await daemon.ask("hi")
    body = model_server.requests[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."} and body["temperature"] == 0.2


async def test_max_tokens_reaches_the_model_and_changes_without_a_restart(
    start_daemon, project, model_server
):
    daemon = await start_daemon(folders=[project], settings={"maxTokens": 64})
    model_server.clear_requests()
    await daemon.ask("hi")
    assert model_server.requests[-1]["max_tokens"] == 64
    daemon.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"deskmate": {"maxTokens": 16, "temperature": 0.5}})
    )
    for _ in range(100):
        await daemon.ask("again")
        if model_server.requests[-1].get("max_tokens") == 16:
            break
        await asyncio.sleep(0.05)
    assert model_server.requests[-1]["max_tokens"] == 16 and model_server.requests[-1]["temperature"] == 0.5
    daemon.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"deskmate": {"maxTokens": None}})
    )
    for _ in range(100):
        await daemon.ask("unlimited")
        if "max_tokens" not in model_server.requests[-1]:
            break
        await asyncio.sleep(0.05)
    assert "max_tokens" not in model_server.requests[-1]
