"""``deskmate memory add|list|forget`` in a real subprocess, sharing the project's memory with the daemon."""

from __future__ import annotations

from test_cli import deskmate


async def test_memory_add_list_forget_and_the_daemon_sees_the_same(
    start_daemon, project, model_server, data_dir
):
    sub = project / "src"
    sub.mkdir()
    (project / "AGENTS.md").write_text("Answer briefly.\n")
    run = dict(model_server=model_server, data_dir=data_dir)
    added = deskmate("memory", "add", "Use", "tabs,", "not", "spaces", cwd=sub, **run)
    assert added.stdout.startswith("Remembered (") and "1 memories" in added.stdout
    memory_id = added.stdout.split("(", 1)[1].split(")", 1)[0]

    listed = deskmate("memory", "list", cwd=project, **run).stdout.splitlines()
    assert listed[0].startswith(f"{memory_id}  ") and listed[0].endswith("Use tabs, not spaces")
    assert listed[1] == f"Instructions read: {project / 'AGENTS.md'}"

    deskmate("ask", "indent how?", cwd=project, **run)
    asked = next(r for r in model_server.requests if r["messages"][-1]["content"] == "indent how?")
    system = asked["messages"][0]["content"]
    assert "- Use tabs, not spaces" in system and "Answer briefly." in system

    daemon = await start_daemon(folders=[project])
    seen = await daemon.run("deskmate.listMemories", {})
    assert [(m["memoryId"], m["text"]) for m in seen["memories"]] == [(memory_id, "Use tabs, not spaces")]
    await daemon.stop()

    assert deskmate("memory", "forget", memory_id, cwd=project, **run).stdout == f"Forgot {memory_id}.\n"
    assert deskmate("memory", "list", cwd=project, **run).stdout.startswith("No memories yet")
    again = deskmate("memory", "forget", memory_id, cwd=project, check=False, **run)
    assert again.returncode == 1 and f"no memory with id {memory_id!r}" in again.stderr
    bad = deskmate("memory", "forget", "../x", cwd=project, check=False, **run)
    assert bad.returncode == 1 and "Invalid memory id" in bad.stderr
