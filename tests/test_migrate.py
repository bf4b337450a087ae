"""``deskmate sessions migrate``: every session copied between real stores, verified, resumable."""

from __future__ import annotations

import subprocess
import sys

from conftest import clean_env
from deskmate.memory import FileBackend, Message, Session
from deskmate.memory.migrate import content_hash
from deskmate.memory.migrate import migrate as migrate_sessions
from deskmate.memory.models import SessionMeta
from deskmate.memory.urls import backend_for_url
from helpers import kill_after


def migrate(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", "sessions", "migrate", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check_code is not None:
        assert proc.returncode == check_code, proc.stderr
    return proc


def conversation(n: int, tag: str) -> list[Message]:
    return [
        Message(role="user" if i % 2 == 0 else "assistant", content=f"{tag} {i} ünïcødé 😀", id=f"{tag}-{i}")
        for i in range(n)
    ]


async def hashes(url: str) -> dict[str, tuple[int, str]]:
    backend = backend_for_url(url)
    try:
        result = {}
        for info in await backend.list():
            session = await backend.load(info.id)
            result[info.id] = (len(session.messages), content_hash(session))
        return result
    finally:
        await backend.close()


async def test_files_to_redis_and_back_again_unchanged(tmp_path, redis_url):
    source = FileBackend(tmp_path / "laptop")
    await source.save(
        Session(
            id="alpha",
            title="Alpha",
            workspace_uri="file:///a",
            meta=SessionMeta(tags=["x"]),
            messages=conversation(6, "a"),
        )
    )
    await source.append("beta", conversation(3, "b"), title="Beta")
    await source.save(Session(id="empty", title="Nothing yet"))
    lineage = {"sessionId": "alpha", "messageId": "a-1"}  # a fork keeps where it came from
    await source.save(
        Session(
            id="alpha-fork",
            title="Alpha (fork)",
            meta=SessionMeta(forked_from=lineage),
            messages=conversation(2, "a"),
        )
    )
    first = migrate("--from", (tmp_path / "laptop").as_uri(), "--to", redis_url)
    assert "4 copied, 0 already there, 0 conflicts; 11 messages verified" in first.stdout
    assert await hashes(redis_url) == await hashes((tmp_path / "laptop").as_uri())

    back = migrate("--from", redis_url, "--to", str(tmp_path / "elsewhere"))
    assert "4 copied" in back.stdout
    assert await hashes((tmp_path / "elsewhere").as_uri()) == await hashes((tmp_path / "laptop").as_uri())
    copied = await FileBackend(tmp_path / "elsewhere").load("alpha-fork")
    assert copied.meta.forked_from == lineage and [m.id for m in copied.messages] == ["a-0", "a-1"]


async def test_a_second_run_resumes_and_never_overwrites_what_it_would_lose(tmp_path):
    source, target = FileBackend(tmp_path / "from"), FileBackend(tmp_path / "to")
    done = Session(id="done", messages=conversation(4, "d"))
    await source.save(done)
    await source.save(Session(id="partial", messages=conversation(4, "p")))
    await source.save(Session(id="diverged", messages=conversation(2, "v")))
    await target.save(done)  # copied by an earlier run
    await target.save(Session(id="partial", messages=conversation(2, "p")))  # an older copy
    await target.save(Session(id="diverged", messages=conversation(2, "v") + conversation(1, "only-here")))

    proc = migrate("--from", str(tmp_path / "from"), "--to", str(tmp_path / "to"), check_code=1)
    assert "1 copied, 1 already there, 1 conflicts" in proc.stdout
    assert "conflict: diverged: the target holds 1 message(s) the source lacks" in proc.stderr
    assert [m.id for m in (await target.load("partial")).messages] == [f"p-{i}" for i in range(4)]
    assert (await target.load("diverged")).messages[-1].id == "only-here-0"  # left as it was


async def test_killed_part_way_then_run_again_copies_everything(tmp_path):
    source = FileBackend(tmp_path / "from")
    for i in range(150):
        await source.save(Session(id=f"s{i:03d}", messages=conversation(20, f"s{i}")))
    command = [
        sys.executable,
        "-m",
        "deskmate",
        "sessions",
        "migrate",
        "--from",
        str(tmp_path / "from"),
        "--to",
        str(tmp_path / "to"),
    ]
    proc = subprocess.Popen(
        command, env=clean_env(), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    kill_after(proc, proc.stderr, "copied", 40)
    again = migrate("--from", str(tmp_path / "from"), "--to", str(tmp_path / "to"))
    assert "150 copied" not in again.stdout and "already there" in again.stdout
    assert "0 conflicts; 3000 messages verified" in again.stdout
    assert await hashes((tmp_path / "to").as_uri()) == await hashes((tmp_path / "from").as_uri())


def test_an_unreachable_target_is_named(tmp_path):
    proc = migrate("--from", str(tmp_path), "--to", "redis://:hunter2@127.0.0.1:9/0", check_code=1)
    assert "Redis at 127.0.0.1:9/0 is unreachable" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def test_an_unknown_scheme_is_named(tmp_path):
    proc = migrate("--from", str(tmp_path), "--to", "ftp://example/x", check_code=1)
    assert "Unknown storage URL scheme 'ftp'" in proc.stderr


async def test_a_file_holding_lone_surrogates_is_copied_and_verified(tmp_path, redis_url):
    # A session file written before the stores agreed on U+FFFD: JSON may escape half a pair.
    source = FileBackend(tmp_path / "old")
    await source.append("odd", conversation(2, "odd"), title="SURROGATE title")
    [path] = (tmp_path / "old").rglob("*.jsonl")
    path.write_bytes(path.read_bytes().replace(b"SURROGATE", b"\\ud83d"))
    original = await source.load("odd")
    assert "\ud83d" in original.title
    target = backend_for_url(redis_url)
    try:
        report = await migrate_sessions(source, target)
        assert (report.copied, report.conflicts) == (["odd"], [])
        copy = await target.load("odd")
        assert copy.title == "\ufffd title"
        assert content_hash(copy) == content_hash(original)  # so a second run finds it already there
    finally:
        await target.close()
