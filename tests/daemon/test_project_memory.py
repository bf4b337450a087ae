"""Project memory through the real daemon and the test model server, on every store: a memory
is sent with every ask of its project, in every session, and never in another project;
AGENTS.md is read; forget works; teammates' clones of one repository share the memories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException


def clone(folder: Path, origin: str = "git@github.com:team/app.git") -> Path:
    """A repository with ``origin`` and no commits yet: its project is known by the remote."""
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "remote", "add", "origin", origin], check=True)
    return folder


def system_sent(model_server) -> str:
    first = model_server.requests[-1]["messages"][0]
    return first["content"] if first["role"] == "system" else ""


async def test_memories_go_with_every_session_of_their_project_and_no_other(
    start_daemon, model_server, tmp_path, store_settings
):
    app, other = clone(tmp_path / "me" / "app"), tmp_path / "me" / "other"
    other.mkdir()
    daemon = await start_daemon(folders=[app, other], settings=store_settings)
    remembered = await daemon.run(
        "deskmate.remember", {"text": "The API is versioned under /v2", "workspaceUri": app.as_uri()}
    )
    memory_id = remembered["memoryId"]

    await daemon.ask("first", workspaceUri=app.as_uri())
    assert "- The API is versioned under /v2" in system_sent(model_server)
    await daemon.run("deskmate.newSession", {"workspaceUri": app.as_uri()})
    second = await daemon.ask("in a new session", workspaceUri=app.as_uri())
    assert "- The API is versioned under /v2" in system_sent(model_server)
    await daemon.ask("elsewhere", workspaceUri=other.as_uri())
    assert "/v2" not in str(model_server.requests[-1]["messages"])

    # Not a session: no listing or search shows it, and the sessions hold only their turns.
    listed = (await daemon.run("deskmate.listSessions", {"all": True}))["sessions"]
    assert sorted(s["messageCount"] for s in listed) == [2, 2, 2]
    assert (await daemon.run("deskmate.searchSessions", {"query": "versioned", "all": True}))["total"] == 0
    held = await daemon.run("deskmate.getSession", {"sessionId": second["sessionId"]})
    assert [m["role"] for m in held["messages"]] == ["user", "assistant"]

    # A teammate's clone of the same repository, elsewhere, with a daemon of its own.
    mate = clone(tmp_path / "mate" / "work" / "app", origin="https://github.com/team/app")
    teammate = await start_daemon(
        folders=[mate], settings={**store_settings, "dataDir": str(tmp_path / "mate-data")}
    )
    seen = await teammate.run("deskmate.listMemories", {})
    if store_settings:  # a shared store shares the project's memories with the team
        assert [(m["memoryId"], m["text"]) for m in seen["memories"]] == [
            (memory_id, "The API is versioned under /v2")
        ]
        assert seen["memories"][0]["createdAt"] == remembered["createdAt"]
    else:  # each machine's files are its own
        assert seen["memories"] == []
    assert (await teammate.run("deskmate.listMemories", {}))["project"] == (
        await daemon.run("deskmate.listMemories", {"workspaceUri": app.as_uri()})
    )["project"]

    # Forget: the next ask, in any session of the project, goes without it; it stays forgotten.
    forgot = await daemon.run("deskmate.forget", {"memoryId": memory_id})
    assert forgot == {"memoryId": memory_id, "forgotten": True, "workspaceUri": app.as_uri()}
    await daemon.ask("after forgetting", workspaceUri=app.as_uri())
    assert "/v2" not in str(model_server.requests[-1]["messages"][0])
    await daemon.stop()
    again = await start_daemon(folders=[app], settings=store_settings)
    assert (await again.run("deskmate.listMemories", {}))["memories"] == []
    with pytest.raises(JsonRpcException, match="no memory with id"):
        await again.run("deskmate.forget", {"memoryId": memory_id})


async def test_agents_md_and_deskmate_memory_md_are_read_and_reported(start_daemon, model_server, project):
    (project / "AGENTS.md").write_text("# Rules\nAlways answer with a code example.\n")
    (project / ".deskmate").mkdir()
    (project / ".deskmate" / "memory.md").write_text("The database is PostgreSQL 16.\n")
    daemon = await start_daemon(folders=[project], settings={"systemPrompt": "You help with code."})
    listed = await daemon.run("deskmate.listMemories", {})
    assert [(f["path"], f["truncated"]) for f in listed["instructionFiles"]] == [
        (str(project / "AGENTS.md"), False),
        (str(project / ".deskmate" / "memory.md"), False),
    ]
    assert listed["instructionFiles"][0]["uri"] == (project / "AGENTS.md").as_uri()
    before = (await daemon.run("deskmate.getSession", {}))["nextAskTokens"]
    await daemon.run("deskmate.remember", {"text": "Use pytest"})
    # The count of what the next ask sends holds the instructions and the memory too.
    assert (await daemon.run("deskmate.getSession", {}))["nextAskTokens"] > before > 10
    await daemon.ask("how do I test this?")
    system = system_sent(model_server)
    assert system.startswith("You help with code.")
    for part in ("Always answer with a code example.", "PostgreSQL 16", "- Use pytest"):
        assert part in system
    assert model_server.requests[-1]["messages"][-1] == {"role": "user", "content": "how do I test this?"}
