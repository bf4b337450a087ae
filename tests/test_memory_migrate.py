"""Project memories go where sessions go: ``sessions migrate --to`` copies them (verified,
resumable) and ``sessions migrate --encrypt`` / ``--rekey`` seal them, on every store."""

from __future__ import annotations

from conftest import clean_env
from deskmate.memory import Message, keys
from deskmate.memory.urls import backend_for_url
from test_encryption_cli import deskmate, key_env, store  # noqa: F401  fixtures
from test_migrate import migrate


def facts(project: str) -> list[Message]:
    return [
        Message(
            role="system",
            content=f"SECRETMEMORY {project} {i} ünï",
            id=f"{project}-{i}",
            timestamp=f"2026-12-0{i + 1}T10:00:00.000Z",
        )
        for i in range(3)
    ]


async def memories_in(url: str) -> dict[str, list[dict]]:
    backend = backend_for_url(url)
    try:
        return {
            p: [m.to_dict() for m in await backend.load_memories(p)] for p in await backend.memory_projects()
        }
    finally:
        await backend.close()


async def test_migrate_copies_every_project_memory_and_resumes(tmp_path, store):  # noqa: F811
    url, _module, _namespace = store
    source_url = (tmp_path / "laptop").as_uri()
    source = backend_for_url(source_url)
    try:
        for project in ("app-1a2b3c4d", "lib-5e6f7a8b"):
            for memory in facts(project):
                await source.add_memory(project, memory)
    finally:
        await source.close()
    first = migrate("--from", source_url, "--to", url)
    assert "and 6 project memories." in first.stdout
    assert await memories_in(url) == await memories_in(source_url)
    again = migrate("--from", source_url, "--to", url)
    assert "0 conflicts" in again.stdout and "and 6 project memories." in again.stdout
    assert await memories_in(url) == await memories_in(source_url)

    # The target's own memories stay; one with other text under the same id is a conflict.
    target = backend_for_url(url)
    try:
        await target.add_memory("app-1a2b3c4d", Message(role="system", content="theirs", id="their-own"))
        await target.add_memory(
            "lib-5e6f7a8b", Message(role="system", content="changed", id="lib-5e6f7a8b-0")
        )
    finally:
        await target.close()
    clash = migrate("--from", source_url, "--to", url, check_code=1)
    assert "memory lib-5e6f7a8b-0 of project lib-5e6f7a8b" in clash.stderr
    held = await memories_in(url)
    assert "theirs" in [m["content"] for m in held["app-1a2b3c4d"]]
    assert {m["id"]: m["content"] for m in held["lib-5e6f7a8b"]}["lib-5e6f7a8b-0"] == "changed"


async def test_encrypt_and_rekey_seal_the_project_memories(tmp_path, store, key_env):  # noqa: F811
    url, module, namespace = store
    env = clean_env(**{keys.ENV_KEY_FILE: str(key_env), "DESKMATE_STORAGE_URL": url})
    backend = backend_for_url(url)
    try:
        for memory in facts("app-1a2b3c4d"):
            await backend.add_memory("app-1a2b3c4d", memory)
    finally:
        await backend.close()
    plain = await memories_in(url)
    assert b"SECRETMEMORY" in module.stored_bytes(namespace, tmp_path)

    deskmate("keys", "init", "--file", str(key_env), env=env)
    done = deskmate("sessions", "migrate", "--encrypt", env=env)
    assert "and 3 project memories." in done.stdout
    assert b"SECRETMEMORY" not in module.stored_bytes(namespace, tmp_path)
    keys.forget_loaded_keys()
    assert await memories_in(url) == plain

    deskmate("keys", "init", "--file", str(key_env), "--rotate", env=env)
    deskmate("sessions", "migrate", "--rekey", env=env)
    key_env.write_text(key_env.read_text().splitlines()[0] + "\n")  # the old key dropped
    keys.forget_loaded_keys()
    assert await memories_in(url) == plain
