"""Session behaviour of the real daemon: the builder cases of the Go design, as LSP commands."""

import asyncio
import json

import pytest
from pygls.exceptions import JsonRpcException

from helpers import eventually, stored_messages


def records_on_disk(data_dir, session_id):
    """The message records of a session file, parsed by hand: only for tests of where the file is and
    what is in it that the daemon does not report; history is read through deskmate.getSession."""
    path = data_dir / "sessions" / f"{session_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


async def test_session_id_given_by_the_client_is_used_and_stored(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("hello", sessionId="my-session")
    assert result["sessionId"] == "my-session"
    assert [m["role"] for m in await stored_messages(daemon, "my-session")] == ["user", "assistant"]
    session = await daemon.run("deskmate.getSession", {"sessionId": "my-session"})
    assert session["messages"][1]["content"] == result["answer"]


async def test_default_session_is_derived_from_the_folder(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("hi")
    assert result["sessionId"].startswith("project-") and len(result["sessionId"]) == len("project-") + 8
    session = await daemon.run("deskmate.getSession", {})
    assert session["sessionId"] == result["sessionId"] and session["active"] is True
    # a restart derives the same id
    other = await start_daemon(folders=[project])
    assert (await other.run("deskmate.getSession", {}))["sessionId"] == result["sessionId"]


async def test_default_backend_is_files_under_the_data_dir_from_the_environment(
    start_daemon, project, tmp_path
):
    env_dir = tmp_path / "from-env"
    daemon = await start_daemon(
        folders=[project], settings={"dataDir": None}, env={"DESKMATE_DATA_DIR": str(env_dir)}
    )
    result = await daemon.ask("where do you keep this?")
    assert len(await stored_messages(daemon, result["sessionId"])) == 2
    # On disk: that the file is under the data dir the environment names is what this test is about.
    assert (env_dir / "sessions" / f"{result['sessionId']}.jsonl").is_file()
    status = await daemon.run("deskmate.status", {})
    assert status["dataDir"] == str(env_dir) and status["dataDirWritable"] is True


async def test_auto_save_off_keeps_history_in_memory_until_saved(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"autoSave": False})
    first = await daemon.ask("one")
    second = await daemon.ask("two")
    assert "I see 2 earlier messages" in second["answer"]
    session = await daemon.run("deskmate.getSession", {})
    assert len(session["messages"]) == 4 and session["persisted"] is False
    # A second daemon holds nothing in memory: it sees only what is stored, which is nothing yet.
    other = await start_daemon(folders=[project])
    stored = await other.run("deskmate.getSession", {"sessionId": first["sessionId"]})
    assert stored["messages"] == [] and stored["persisted"] is False
    saved = await daemon.run("deskmate.saveSession", {})
    assert saved == {"sessionId": first["sessionId"], "messageCount": 4}
    # Stored now, as the second daemon sees; the first says so too, until its next turn.
    assert len(await stored_messages(other, first["sessionId"])) == 4
    assert (await daemon.run("deskmate.getSession", {}))["persisted"] is True
    await daemon.ask("three")
    assert (await daemon.run("deskmate.getSession", {}))["persisted"] is False


async def test_turning_auto_save_on_saves_what_was_in_memory(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"autoSave": False})
    first = await daemon.ask("kept in memory")
    daemon.client.workspace_did_change_configuration(
        __import__("lsprotocol").types.DidChangeConfigurationParams(settings={"deskmate": {"autoSave": True}})
    )

    async def saved():
        session = await daemon.run("deskmate.getSession", {"sessionId": first["sessionId"]})
        return session["persisted"] and session["messages"]

    assert len(await eventually(saved, timeout=2.5)) == 2


async def test_save_and_load_need_a_session_id(start_daemon):
    daemon = await start_daemon(folders=[])
    for command in ("deskmate.saveSession", "deskmate.loadSession"):
        with pytest.raises(JsonRpcException, match="session id is required"):
            await daemon.run(command, {})


async def test_an_unusable_store_is_reported_before_asking_the_model(
    start_daemon, project, tmp_path, model_server
):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    daemon = await start_daemon(folders=[project], settings={"dataDir": str(not_a_dir)})
    model_server.clear_requests()
    for command, arguments in (("deskmate.ask", {"question": "q"}), ("deskmate.saveSession", {})):
        with pytest.raises(JsonRpcException, match=r"Cannot read session file .*: Not a directory"):
            await daemon.run(command, arguments)
    assert model_server.requests == []


async def test_load_replaces_memory_with_the_stored_history(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"autoSave": False})
    await daemon.ask("one")
    await daemon.run("deskmate.saveSession", {})
    await daemon.ask("two, not saved")
    assert len((await daemon.run("deskmate.getSession", {}))["messages"]) == 4
    loaded = await daemon.run("deskmate.loadSession", {})
    assert loaded["messageCount"] == 2
    assert len((await daemon.run("deskmate.getSession", {}))["messages"]) == 2
    with pytest.raises(JsonRpcException, match="Session .nope. does not exist"):
        await daemon.run("deskmate.loadSession", {"sessionId": "nope"})


async def test_delete(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("to be deleted")
    trashed = await daemon.run("deskmate.deleteSession", {"sessionId": result["sessionId"]})
    assert (trashed["deleted"], trashed["trashed"]) == (True, True)
    assert (await daemon.run("deskmate.getSession", {}))["messages"] == []  # the folder moved on
    again = await daemon.run("deskmate.deleteSession", {"sessionId": result["sessionId"]})
    assert again == trashed  # already in the trash: it stays there, on the same terms
    gone = await daemon.run("deskmate.deleteSession", {"sessionId": result["sessionId"], "permanent": True})
    assert gone == {"deleted": True, "trashed": False}
    after = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    assert after["messages"] == [] and after["persisted"] is False  # nothing stored, nothing in memory
    assert await daemon.run("deskmate.deleteSession", {"sessionId": result["sessionId"]}) == {
        "deleted": False,
        "trashed": False,
    }


@pytest.mark.parametrize("store", ["file", "redis"])
async def test_deleting_a_session_while_it_answers_cancels_the_ask_and_it_stays_deleted(
    start_daemon, project, request, store
):
    settings = {"storageUrl": request.getfixturevalue("redis_url")} if store == "redis" else {}
    daemon = await start_daemon(folders=[project], settings=settings)
    await daemon.ask("first turn", sessionId="doomed")
    asking = asyncio.ensure_future(
        daemon.ask("[[tokens:200]] [[rate:20]]", sessionId="doomed", askId="doomed")
    )
    for _ in range(200):
        if daemon.deltas_of("doomed"):
            break
        await asyncio.sleep(0.02)
    assert daemon.deltas_of("doomed"), "the answer never started"
    deleted = await daemon.run("deskmate.deleteSession", {"sessionId": "doomed"})
    assert (deleted["deleted"], deleted["trashed"]) == (True, True)
    result = await asyncio.wait_for(asking, 10)
    assert result["interrupted"] is True  # the delete cancelled it
    await asyncio.sleep(0.3)  # nothing is stored late either
    listed = await daemon.run("deskmate.listSessions", {"all": True})
    assert "doomed" not in {s["sessionId"] for s in listed["sessions"]}
    session = await daemon.run("deskmate.getSession", {"sessionId": "doomed"})
    assert [m["role"] for m in session["messages"]] == ["user", "assistant", "user"]  # no late answer
    assert session["deletedAt"] is not None


async def test_list_sessions_of_the_workspace_and_all(start_daemon, project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    daemon = await start_daemon(folders=[project])
    mine = await daemon.ask("in project")
    await daemon.ask("elsewhere", workspaceUri=other.as_uri())
    listed = (await daemon.run("deskmate.listSessions", {}))["sessions"]
    assert [(s["sessionId"], s["messageCount"], s["active"]) for s in listed] == [
        (mine["sessionId"], 2, True)
    ]
    entry = listed[0]
    assert entry["workspaceUri"] == project.as_uri() and entry["title"] == "in project"
    assert set(entry) == {
        "sessionId",
        "title",
        "workspaceUri",
        "createdAt",
        "updatedAt",
        "messageCount",
        "tags",
        "pinned",
        "forkedFrom",
        "projectId",
        "active",
    }
    assert (entry["tags"], entry["pinned"], entry["forkedFrom"]) == ([], False, None)
    everything = (await daemon.run("deskmate.listSessions", {"all": True}))["sessions"]
    assert len(everything) == 2
    theirs = (await daemon.run("deskmate.listSessions", {"workspaceUri": other.as_uri()}))["sessions"]
    assert [s["title"] for s in theirs] == ["elsewhere"]


async def test_history_survives_three_daemon_restarts(start_daemon, project):
    for number in range(3):
        daemon = await start_daemon(folders=[project])
        result = await daemon.ask(f"question {number}")
        assert f"I see {2 * number} earlier messages" in result["answer"]
        await daemon.stop()
    last = await start_daemon(folders=[project])
    session = await last.run("deskmate.getSession", {})
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == [
        "question 0",
        "question 1",
        "question 2",
    ]


async def test_without_a_workspace_answers_in_memory_only(start_daemon, data_dir):
    daemon = await start_daemon(folders=[])
    first = await daemon.ask("no project open")
    second = await daemon.ask("still here?")
    assert first["sessionId"] is None and "I see 2 earlier messages" in second["answer"]
    # On disk: a session without an id cannot be asked for by id; no sessions folder at all shows
    # that nothing was written.
    assert not (data_dir / "sessions").exists()
    session = await daemon.run("deskmate.getSession", {})
    assert session["sessionId"] is None and len(session["messages"]) == 4


async def test_new_session_becomes_active_and_survives_restart(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    old = await daemon.ask("old topic")
    fresh = await daemon.run("deskmate.newSession", {"title": "Refactoring"})
    assert fresh["sessionId"] != old["sessionId"] and fresh["title"] == "Refactoring"
    answer = await daemon.ask("new topic")
    assert answer["sessionId"] == fresh["sessionId"] and "I see 0 earlier messages" in answer["answer"]
    await daemon.stop()
    again = await start_daemon(folders=[project])
    assert (await again.run("deskmate.getSession", {}))["sessionId"] == fresh["sessionId"]
    listed = (await again.run("deskmate.listSessions", {}))["sessions"]
    assert {s["sessionId"]: s["active"] for s in listed} == {
        fresh["sessionId"]: True,
        old["sessionId"]: False,
    }


async def test_switch_session(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    first = await daemon.ask("first topic")
    await daemon.run("deskmate.newSession", {})
    switched = await daemon.run("deskmate.switchSession", {"sessionId": first["sessionId"]})
    assert switched == {"sessionId": first["sessionId"], "title": "first topic", "messageCount": 2}
    assert "I see 2 earlier messages" in (await daemon.ask("back again"))["answer"]
    with pytest.raises(JsonRpcException, match='Session "?.?ghost.?"? does not exist'):
        await daemon.run("deskmate.switchSession", {"sessionId": "ghost"})


async def test_deleting_the_active_session_returns_the_folder_to_its_default(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    default = (await daemon.run("deskmate.getSession", {}))["sessionId"]
    fresh = await daemon.run("deskmate.newSession", {})
    await daemon.ask("temporary")
    await daemon.run("deskmate.deleteSession", {"sessionId": fresh["sessionId"]})
    assert (await daemon.run("deskmate.getSession", {}))["sessionId"] == default


async def test_several_commands_in_a_row(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    a = await daemon.ask("alpha")
    b = await daemon.run("deskmate.newSession", {"title": "Beta"})
    await daemon.ask("beta one")
    await daemon.ask("beta two")
    await daemon.run("deskmate.switchSession", {"sessionId": a["sessionId"]})
    exported = await daemon.run("deskmate.exportSession", {"sessionId": b["sessionId"]})
    assert exported["markdown"].startswith("# Beta\n")
    assert "beta one" in exported["markdown"] and "beta two" in exported["markdown"]
    listed = (await daemon.run("deskmate.listSessions", {}))["sessions"]
    assert {s["sessionId"]: s["messageCount"] for s in listed} == {a["sessionId"]: 2, b["sessionId"]: 4}


async def test_two_daemons_on_one_workspace_share_the_history(start_daemon, project, data_dir):
    one = await start_daemon(folders=[project])
    two = await start_daemon(folders=[project])
    await one.ask("from the first editor")
    reply = await two.ask("from the second editor")
    assert "I see 2 earlier messages" in reply["answer"]
    # at the same time, in the same session: one answers, the other is refused until it is
    # done (the answering lease, tests/daemon/test_live_sessions.py), nothing lost or torn
    one.deltas.clear()
    answering = asyncio.ensure_future(one.ask("together 0 [[tokens:20]][[rate:10]]"))
    await eventually(lambda: one.deltas, timeout=10)
    with pytest.raises(JsonRpcException, match="still answering in another window"):
        await two.ask("together 1")
    await answering
    await two.ask("together 1")
    assert len(await stored_messages(two, reply["sessionId"])) == 8
    # On disk: the record numbers ``n`` are written only there; 1 to 8 without a gap or a repeat shows
    # that the two processes' appends took turns under the file lock.
    messages = records_on_disk(data_dir, reply["sessionId"])
    assert len(messages) == 8 and [m["n"] for m in messages] == list(range(1, 9))
    assert {m["content"] for m in messages if m["role"] == "user"} >= {
        "together 0 [[tokens:20]][[rate:10]]",
        "together 1",
    }


async def test_multi_root_workspace_gives_each_folder_its_session(start_daemon, project, tmp_path):
    second = tmp_path / "second"
    (second / "src").mkdir(parents=True)
    (second / "src" / "lib.rs").write_text("fn main() {}\n")
    daemon = await start_daemon(folders=[project, second])
    a = await daemon.ask("about project", workspaceUri=project.as_uri())
    b = await daemon.ask("about second", context={"uri": (second / "src" / "lib.rs").as_uri()})
    assert a["sessionId"] != b["sessionId"] and b["sessionId"].startswith("second-")
    outside = await daemon.ask("loose file", context={"uri": (tmp_path / "loose.txt").as_uri(), "text": "x"})
    assert outside["sessionId"] == "global"


async def test_damaged_history_is_moved_aside_and_the_user_warned(start_daemon, project, data_dir):
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask("soon damaged")
    # On disk: the damage is done to the file by hand, and the file is what is moved aside.
    path = data_dir / "sessions" / f"{result['sessionId']}.jsonl"
    path.write_text(path.read_text().replace('"role":"user"', '"role":"usr"'))
    await daemon.ask("after the damage")
    warnings = [m.message for m in daemon.client.messages if "damaged" in m.message]
    assert len(warnings) == 1 and ".corrupt-" in warnings[0]
    moved = warnings[0].split("moved to ")[1].split(" and")[0]
    assert "soon damaged" in open(moved).read()


async def test_session_id_setting_pins_every_folder(start_daemon, project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    daemon = await start_daemon(folders=[project, other], settings={"sessionId": "pinned"})
    a = await daemon.ask("one", workspaceUri=project.as_uri())
    b = await daemon.ask("two", workspaceUri=other.as_uri())
    assert a["sessionId"] == b["sessionId"] == "pinned" and "I see 2 earlier messages" in b["answer"]
    with pytest.raises(JsonRpcException, match="pins every folder"):
        await daemon.run("deskmate.newSession", {})


async def test_a_new_session_takes_its_first_question_as_title(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    fresh = await daemon.run("deskmate.newSession", {})
    assert fresh["title"] == ""
    await daemon.ask("Why is the build slow?")
    listed = (await daemon.run("deskmate.listSessions", {}))["sessions"]
    assert [(s["sessionId"], s["title"], s["messageCount"]) for s in listed] == [
        (fresh["sessionId"], "Why is the build slow?", 2)
    ]
