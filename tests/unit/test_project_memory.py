"""Project memory in-process: what an ask is sent (memories, AGENTS.md, .deskmate/memory.md),
in which project, and the three commands' arguments and results."""

from __future__ import annotations

import os
import subprocess

import pytest

from deskmate.engine import Assistant, EngineError, InvalidArgument, Settings
from deskmate.engine.project_memory import (
    MAX_INSTRUCTIONS_CHARS,
    MemoryNotFound,
    memory_key,
)
from deskmate.engine.projects import identify

from .fakes import FakeModel
from .test_handlers import wire  # noqa: F401  the in-process server fixture


def system_of(model: FakeModel) -> str:
    first = model.prompts[-1][0]
    return first["content"] if first["role"] == "system" else ""


async def test_a_memory_is_in_the_system_prompt_of_every_session_of_its_project(engine, model, project):
    memory, after = await engine.project_memory.remember("  Use pytest, never unittest  ")
    assert memory.content == "Use pytest, never unittest" and [m.id for m in after.memories] == [memory.id]
    await engine.asks.ask("first", ref=engine.sessions.resolve())
    assert "- Use pytest, never unittest" in system_of(model)
    fresh = await engine.sessions.new(project.as_uri())
    await engine.asks.ask("in a new session", ref=engine.sessions.resolve(session_id=fresh.id))
    assert "- Use pytest, never unittest" in system_of(model)
    stored = await engine.store.backend.load(fresh.id)
    assert [m.role for m in stored.messages] == ["user", "assistant"]  # the memory is not a turn


async def test_the_next_ask_counts_the_projects_memory_and_instructions(engine, model, project):
    ref = engine.sessions.resolve()
    await engine.asks.ask("first", ref=ref)
    session = (await engine.sessions.get(ref)).session
    plain = (await engine.asks.next_prompt(session, ref)).tokens
    await engine.project_memory.remember("Use pytest, never unittest. " * 20)
    remembered = (await engine.asks.next_prompt(session, ref)).tokens
    (project / "AGENTS.md").write_text("Run `make test` before committing. " * 40)
    instructed = (await engine.asks.next_prompt(session, ref)).tokens
    assert plain < remembered < instructed
    await engine.asks.ask("second", ref=ref)  # what the count said is what went
    assert engine.tokens.prompt(model.settings, model.prompts[-1][:-1]) == instructed


async def test_another_project_is_not_sent_the_memory(engine, model, project, tmp_path):
    await engine.project_memory.remember("Alpha uses tabs")
    other = tmp_path / "other"
    other.mkdir()
    engine.sessions.workspaces.add_folder(other.as_uri())
    await engine.asks.ask("q", ref=engine.sessions.resolve(workspace_uri=other.as_uri()))
    assert "Alpha uses tabs" not in system_of(model)
    assert (await engine.project_memory.load(other.as_uri())).memories == []


async def test_the_system_prompt_setting_comes_first_then_files_then_memories(tmp_path, project, model):
    (project / "AGENTS.md").write_text("Run `make test` before committing.\n")
    (project / ".deskmate").mkdir()
    (project / ".deskmate" / "memory.md").write_text("The staging host is stage.internal.\n")
    engine = Assistant(
        Settings(data_dir=str(tmp_path / "data"), auto_title=False, system_prompt="You are terse."),
        model_factory=lambda settings: model,
    )
    engine.sessions.workspaces.set_folders([project.as_uri()])
    try:
        await engine.project_memory.remember("Prefer dataclasses")
        await engine.asks.ask("q", ref=engine.sessions.resolve())
        system = system_of(model)
        order = [
            system.index(part)
            for part in (
                "You are terse.",
                "# Project instructions (AGENTS.md)",
                "Run `make test`",
                "# Project instructions (.deskmate/memory.md)",
                "stage.internal",
                "# Project memory",
                "- Prefer dataclasses",
            )
        ]
        assert order == sorted(order)
    finally:
        await engine.close()


async def test_an_edit_to_agents_md_counts_at_the_next_ask(engine, model, project):
    await engine.asks.ask("q", ref=engine.sessions.resolve())
    assert "Project instructions" not in system_of(model)
    (project / "AGENTS.md").write_text("Answer in French.")
    await engine.asks.ask("q2", ref=engine.sessions.resolve())
    assert "Answer in French." in system_of(model)


async def test_a_long_instruction_file_is_cut_and_says_so(engine, model, project):
    (project / "AGENTS.md").write_text("x" * (MAX_INSTRUCTIONS_CHARS + 500))
    loaded = await engine.project_memory.load(project.as_uri())
    (file,) = loaded.instructions
    assert file.truncated and file.characters == MAX_INSTRUCTIONS_CHARS + 500
    await engine.asks.ask("q", ref=engine.sessions.resolve())
    assert f"Only the first {MAX_INSTRUCTIONS_CHARS:,} characters" in system_of(model)
    assert "x" * (MAX_INSTRUCTIONS_CHARS + 1) not in system_of(model)


async def test_an_agents_md_linking_out_of_the_project_is_not_read(engine, model, project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    os.symlink(secret, project / "AGENTS.md")
    loaded = await engine.project_memory.load(project.as_uri())
    assert loaded.instructions == [] and "outside every workspace folder" in loaded.refused[0][1]
    await engine.asks.ask("q", ref=engine.sessions.resolve())
    assert "TOPSECRET" not in str(model.prompts[-1])


async def test_forget_removes_the_memory_from_the_next_ask(engine, model):
    memory, _ = await engine.project_memory.remember("Deploy on Fridays")
    assert await engine.project_memory.forget(memory.id) == engine.sessions.workspaces.folders[0]
    await engine.asks.ask("q", ref=engine.sessions.resolve())
    assert "Fridays" not in str(model.prompts[-1])
    with pytest.raises(MemoryNotFound, match="no memory with id"):
        await engine.project_memory.forget(memory.id)


async def test_remember_refuses_empty_and_oversized_text_and_needs_a_folder(engine, tmp_path):
    with pytest.raises(InvalidArgument, match="empty"):
        await engine.project_memory.remember("   ")
    with pytest.raises(InvalidArgument, match="at most 2,000"):
        await engine.project_memory.remember("x" * 2001)
    engine.sessions.workspaces.set_folders([])
    with pytest.raises(EngineError, match="open a folder"):
        await engine.project_memory.remember("a fact")


async def test_secrets_in_a_memory_are_redacted_when_redaction_is_on(tmp_path, project, model):
    engine = Assistant(
        Settings(data_dir=str(tmp_path / "data"), redact_secrets=True), model_factory=lambda s: model
    )
    engine.sessions.workspaces.set_folders([project.as_uri()])
    try:
        memory, _ = await engine.project_memory.remember("The key is AKIAIOSFODNN7EXAMPLE")
        assert "AKIAIOSFODNN7EXAMPLE" not in memory.content and "[redacted" in memory.content
    finally:
        await engine.close()


def test_a_clone_anywhere_has_the_same_memory_key(tmp_path):
    """Keyed by the project's identity: clones of one repository (however its remote is spelled),
    wherever they are, share the key; an unrelated folder has its own."""
    keys = []
    for place, url in (
        ("a/app", "git@github.com:me/app.git"),
        ("b/app", "https://github.com/me/app"),
        ("c/renamed", "ssh://git@github.com:22/me/app/"),
    ):
        folder = tmp_path / place
        folder.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
        subprocess.run(["git", "-C", str(folder), "remote", "add", "origin", url], check=True)
        keys.append(memory_key(identify(folder.as_uri())))
    assert len(set(keys)) == 1 and keys[0].startswith("project-")
    plain = tmp_path / "d" / "app"
    plain.mkdir(parents=True)
    assert memory_key(identify(plain.as_uri())) not in keys  # no repository: keyed by its path


async def test_the_commands_check_their_arguments_and_shape_their_results(wire, project):  # noqa: F811
    added = (await wire.command("deskmate.remember", {"text": "Use ruff"}))["result"]
    assert set(added) >= {"memoryId", "text", "createdAt"} and added["text"] == "Use ruff"
    (project / "AGENTS.md").write_text("Be brief.")
    listed = (await wire.command("deskmate.listMemories", {}))["result"]
    assert [(m["memoryId"], m["text"]) for m in listed["memories"]] == [(added["memoryId"], "Use ruff")]
    assert listed["memories"][0]["createdAt"] == added["createdAt"]
    assert [f["path"] for f in listed["instructionFiles"]] == [str(project / "AGENTS.md")]
    assert listed["instructionFiles"][0]["truncated"] is False
    forgot = (await wire.command("deskmate.forget", {"memoryId": added["memoryId"]}))["result"]
    assert forgot["forgotten"] is True
    assert (await wire.command("deskmate.listMemories", {}))["result"]["memories"] == []

    missing = await wire.command("deskmate.remember", {})
    assert missing["error"]["code"] == -32602 and '"text" is required' in missing["error"]["message"]
    bad = await wire.command("deskmate.forget", {"memoryId": "../etc"})
    assert bad["error"]["code"] == -32602 and "memoryId" in bad["error"]["message"]
    gone = await wire.command("deskmate.forget", {"memoryId": added["memoryId"]})
    assert "no memory with id" in gone["error"]["message"]


async def test_instruction_files_are_read_only_in_open_folders(engine, model, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "AGENTS.md").write_text("NOT-OPEN")
    loaded = await engine.project_memory.load(elsewhere.as_uri())
    assert loaded.instructions == []
    await engine.asks.ask("q", ref=engine.sessions.resolve(workspace_uri=elsewhere.as_uri()))
    assert "NOT-OPEN" not in str(model.prompts[-1])


async def test_an_unreadable_memories_file_is_reported_and_the_ask_goes_on(engine, model, project):
    await engine.project_memory.remember("a fact")
    key = await engine.project_memory.key_of(project.as_uri())
    path = engine.store.data_dir / "memories" / f"{key}.json"
    path.write_text("{not json")
    result = await engine.asks.ask("still answered?", ref=engine.sessions.resolve())
    assert result.answer and "a fact" not in str(model.prompts[-1])
    assert any(
        str(path) in warning and "without the project's memories" in warning for warning in engine.warnings
    )
    with pytest.raises(Exception, match="is not JSON"):
        await engine.project_memory.remember("another")
    assert path.read_text() == "{not json"  # never overwritten


async def test_memories_take_their_room_from_earlier_turns_within_the_context_window(engine, model):
    model.window = 1500  # tokens, 4 characters each, as the fake model counts them
    for i in range(8):
        await engine.asks.ask(f"question {i} " + "x" * 600, ref=engine.sessions.resolve())
    before = len(model.prompts[-1])
    for i in range(4):
        await engine.project_memory.remember(f"fact {i}: " + "y" * 400)
    result = await engine.asks.ask("last question", ref=engine.sessions.resolve())
    prompt = model.prompts[-1]
    assert result.answer and not result.interrupted
    assert "fact 3: " in prompt[0]["content"] and prompt[-1]["content"] == "last question"
    assert len(prompt) < before  # fewer earlier turns went along (the memories took their room)
    assert sum(len(m["content"]) for m in prompt) // 4 <= model.window  # never over the window
