"""The LSP layer in-process: a server from create_server() with the fake model, fed JSON-RPC
messages through pygls' own protocol, its replies and notifications read back from the writer."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from deskmate.engine import Settings
from deskmate.lsp.server import create_server

from .fakes import FakeModel


class Wire:
    """Stands where the transport would: feeds messages to the server, collects what it writes."""

    def __init__(self, server) -> None:
        self.server = server
        self.sent: list[dict[str, Any]] = []
        self.times: list[float] = []  # when each message was written (the loop's clock)
        self._ids = itertools.count(1)
        server.protocol.set_writer(self)

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))
        self.times.append(asyncio.get_running_loop().time())

    def sent_at(self, message: dict[str, Any]) -> float:
        return self.times[next(i for i, m in enumerate(self.sent) if m is message)]

    def send(self, message: dict[str, Any]) -> None:
        protocol = self.server.protocol
        protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def start(self, method: str, params: Any, *, msg_id: int | None = None) -> int:
        """Send a request without waiting for its reply (``reply``); its id."""
        msg_id = msg_id or next(self._ids)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    async def reply(self, msg_id: int) -> dict[str, Any]:
        for _ in range(500):
            for message in self.sent:
                if message.get("id") == msg_id and ("result" in message or "error" in message):
                    return message
            await asyncio.sleep(0.01)
        raise AssertionError(f"no reply to request {msg_id}")

    async def request(self, method: str, params: Any, *, msg_id: int | None = None) -> dict[str, Any]:
        return await self.reply(self.start(method, params, msg_id=msg_id))

    def start_command(self, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> int:
        params = {"command": name, "arguments": [arguments or {}]}
        return self.start("workspace/executeCommand", params, **kw)

    async def command(self, name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return await self.reply(self.start_command(name, arguments, **kw))

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m["params"] for m in self.sent if m.get("method") == method]


@pytest.fixture
async def wire(tmp_path, project, model):
    def factory(settings: Settings) -> FakeModel:
        model.settings = settings
        return model

    server = create_server(Settings(data_dir=str(tmp_path / "data"), auto_title=False), model_factory=factory)
    wire = Wire(server)
    init = await wire.request(
        "initialize",
        {"capabilities": {}, "workspaceFolders": [{"uri": project.as_uri(), "name": "project"}]},
    )
    assert init["result"]["serverInfo"]["name"] == "deskmate"
    wire.notify("initialized", {})
    yield wire
    await server.assistant.close()


async def test_an_ask_streams_deltas_in_order_and_returns_the_answer(wire, model):
    model.answer = "one two three"
    reply = await wire.command("deskmate.ask", {"question": "count", "askId": "a"})
    assert reply["result"]["answer"] == "one two three" and reply["result"]["interrupted"] is False
    deltas = wire.notifications("deskmate/askDelta")
    # The first piece goes out alone at once; the rest came within the window: one delta.
    assert [(d["index"], d["delta"]) for d in deltas] == [(0, "one "), (1, "two three")]
    assert {d["askId"] for d in deltas} == {"a"} and deltas[0]["sessionId"] == reply["result"]["sessionId"]


async def test_a_fast_stream_is_coalesced_exact_and_in_order(wire, model):
    words = [f"w{i}" for i in range(300)]
    model.answer, model.pause = " ".join(words), 0.0005
    reply = await wire.command("deskmate.ask", {"question": "many", "askId": "fast"})
    assert reply["result"]["answer"] == model.answer
    deltas = wire.notifications("deskmate/askDelta")
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert "".join(d["delta"] for d in deltas) == model.answer  # nothing lost, doubled or reordered
    assert deltas[0]["delta"] == "w0 "  # the first piece did not wait for a window
    assert 1 < len(deltas) < len(words)
    # After a delta, the next waits for the window (16 ms by default) to end; only the text still
    # held when the answer ends goes out at once.
    messages = [m for m in wire.sent if m.get("method") == "deskmate/askDelta"]
    times = [wire.sent_at(m) for m in messages[:-1]]
    assert min(later - earlier for earlier, later in zip(times, times[1:], strict=False)) >= 0.016 - 0.001
    # The result comes after the last delta.
    result_at = wire.sent_at(next(m for m in wire.sent if m.get("result", {}) and m["result"].get("askId")))
    assert result_at >= times[-1]


async def test_the_first_delta_goes_out_before_the_next_piece_arrives(wire, model):
    model.answer, model.gate = "first second", asyncio.Event()
    asking = asyncio.ensure_future(wire.command("deskmate.ask", {"question": "q", "askId": "g"}))
    await asyncio.wait_for(model.started.wait(), 5)
    assert [d["delta"] for d in wire.notifications("deskmate/askDelta")] == ["first "]
    model.gate.set()
    await asking
    assert [d["delta"] for d in wire.notifications("deskmate/askDelta")] == ["first ", "second"]


async def test_a_zero_window_sends_every_piece_on_its_own(wire, model):
    wire.notify("workspace/didChangeConfiguration", {"settings": {"deskmate": {"deltaWindowMs": 0}}})
    for _ in range(100):
        if wire.server.assistant.settings.delta_window_ms == 0:
            break
        await asyncio.sleep(0.01)
    model.answer = "one two three"
    await wire.command("deskmate.ask", {"question": "q"})
    deltas = wire.notifications("deskmate/askDelta")
    assert [(d["index"], d["delta"]) for d in deltas] == [(0, "one "), (1, "two "), (2, "three")]


async def test_text_held_when_an_ask_is_cancelled_is_sent_and_stored(wire, model):
    model.answer, model.pause = " ".join(f"w{i}" for i in range(2000)), 0.001
    asking = asyncio.ensure_future(wire.command("deskmate.ask", {"question": "q", "askId": "stop"}))
    for _ in range(500):
        if len(wire.notifications("deskmate/askDelta")) >= 3:
            break
        await asyncio.sleep(0.01)
    await wire.command("deskmate.cancel", {"askId": "stop"})
    result = (await asking)["result"]
    shown = "".join(d["delta"] for d in wire.notifications("deskmate/askDelta"))
    assert result["interrupted"] is True and result["answer"] == shown
    stored = (await wire.command("deskmate.getSession", {}))["result"]["messages"][-1]
    assert stored["content"] == shown


async def test_bad_arguments_are_invalid_params_naming_the_field(wire):
    for arguments, fragment in (
        ({}, '"question" is required'),
        ({"question": "q", "sessionId": "aux.txt"}, '"sessionId": Invalid session id'),
        (
            {
                "question": "q",
                "context": {
                    "uri": "file:///etc/passwd",
                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
                },
            },
            "outside every workspace folder",
        ),
    ):
        reply = await wire.command("deskmate.ask", arguments)
        assert reply["error"]["code"] == -32602 and fragment in reply["error"]["message"], reply


async def test_cancel_request_stops_the_ask_and_keeps_the_partial_answer(wire, model):
    model.answer, model.gate = "first second", asyncio.Event()
    asking = wire.start_command("deskmate.ask", {"question": "q", "askId": "c"})
    await asyncio.wait_for(model.started.wait(), 5)
    wire.notify("$/cancelRequest", {"id": asking})
    reply = await wire.reply(asking)
    assert reply["error"]["code"] == -32800  # RequestCancelled, as LSP says
    # The partial answer is stored even so, a moment after the reply.
    for _ in range(500):
        messages = (await wire.command("deskmate.getSession", {}))["result"]["messages"]
        if len(messages) == 2:
            break
        await asyncio.sleep(0.01)
    assert [(m["content"], m.get("status")) for m in messages] == [("q", None), ("first ", "interrupted")]


async def test_settings_from_did_change_configuration_reach_the_model(wire, model):
    wire.notify(
        "workspace/didChangeConfiguration", {"settings": {"deskmate": {"maxTokens": 7, "temperature": 3}}}
    )
    for _ in range(100):
        if wire.server.assistant.settings.max_tokens == 7:
            break
        await asyncio.sleep(0.01)
    await wire.command("deskmate.ask", {"question": "q"})
    assert model.settings.max_tokens == 7 and model.settings.temperature is None  # 3 is refused...
    warnings = [m["message"] for m in wire.notifications("window/showMessage")]
    assert any("'temperature' must be between 0 and 2" in w for w in warnings)  # ...and said so


async def test_two_servers_live_side_by_side_in_one_process(wire, tmp_path):
    other = create_server(
        Settings(data_dir=str(tmp_path / "other")), model_factory=lambda s: FakeModel(s, "other")
    )
    second = Wire(other)
    await second.request("initialize", {"capabilities": {}})
    reply = await second.command("deskmate.ask", {"question": "q", "sessionId": "s"})
    assert reply["result"]["answer"] == "other"
    assert (await wire.command("deskmate.listSessions", {"all": True}))["result"]["sessions"][0][
        "sessionId"
    ] != "s"
    await other.assistant.close()


async def test_listings_and_sessions_carry_the_stored_metadata(wire):
    from deskmate.memory import Session
    from deskmate.memory.models import SessionMeta

    store = wire.server.assistant.store.backend
    await store.save(Session(id="kept", title="Kept", meta=SessionMeta(tags=["api"], pinned=True)))
    listed = (await wire.command("deskmate.listSessions", {"all": True}))["result"]["sessions"]
    entry = next(s for s in listed if s["sessionId"] == "kept")
    assert (entry["tags"], entry["pinned"]) == (["api"], True)
    session = (await wire.command("deskmate.getSession", {"sessionId": "kept"}))["result"]
    assert (session["tags"], session["pinned"]) == (["api"], True)
    other = next(s for s in listed if s["sessionId"] != "kept")
    assert (other["tags"], other["pinned"]) == ([], False)


async def test_trash_commands_check_their_arguments_and_shape_their_results(wire):
    asked = (await wire.command("deskmate.ask", {"question": "keep me"}))["result"]
    for name, arguments, fragment in (
        (
            "deskmate.deleteSession",
            {"sessionId": asked["sessionId"], "permanent": "yes"},
            '"permanent" must be',
        ),
        ("deskmate.restoreSession", {}, '"sessionId" is required'),
        ("deskmate.listSessions", {"trash": 1}, '"trash" must be true or false'),
    ):
        reply = await wire.command(name, arguments)
        assert reply["error"]["code"] == -32602 and fragment in reply["error"]["message"], reply
    deleted = (await wire.command("deskmate.deleteSession", {"sessionId": asked["sessionId"]}))["result"]
    assert set(deleted) == {"deleted", "trashed", "purgeAfter"} and deleted["trashed"] is True
    [entry] = (await wire.command("deskmate.listSessions", {"trash": True}))["result"]["sessions"]
    assert entry["purgeAfter"] == deleted["purgeAfter"] and entry["deletedAt"] < entry["purgeAfter"]
    restored = (await wire.command("deskmate.restoreSession", {"sessionId": asked["sessionId"]}))["result"]
    assert restored == {"sessionId": asked["sessionId"], "title": "keep me", "messageCount": 2}
    status = (await wire.command("deskmate.status"))["result"]
    assert (status["retentionDays"], status["trashDays"], status["expiringIn7Days"]) == (None, 30, 0)


async def test_a_command_sent_right_after_a_settings_change_sees_the_new_settings(wire, model):
    """The store reopens while settings apply (closing the old one waits on its threads): a
    command that follows the change waits for it rather than run on the old store."""
    model.answer = "stored"
    await wire.command("deskmate.ask", {"question": "open the file store"})
    bad = "redis://user:Kd#Wp@127.0.0.1:1/0"  # an unencoded '#': refused by name
    wire.notify("workspace/didChangeConfiguration", {"settings": {"deskmate": {"storageUrl": bad}}})
    reply = await wire.command("deskmate.listSessions", {"all": True})
    assert "Invalid Redis storage URL" in reply["error"]["message"]
