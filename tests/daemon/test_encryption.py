"""The encryption and compression settings through the real daemon."""

import base64
import os

import pytest
from pygls.exceptions import JsonRpcException

from deskmate.memory import keys

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


async def test_with_encryption_on_nothing_readable_is_stored(start_daemon, project, data_dir):
    daemon = await start_daemon(
        folders=[project],
        settings={"encryption": "on", "compression": "zstd"},
        env={"DESKMATE_ENCRYPTION_KEY": KEY},
    )
    context = {"uri": (project / "main.py").as_uri(), "text": "def PLAINMARK_fn():\n    return 1\n" * 20}
    result = await daemon.ask("What does PLAINMARK do?", context=context)
    again = await daemon.ask("And then?")
    assert "I see 2 earlier messages" in again["answer"]
    listed = await daemon.run("deskmate.listSessions", {"workspaceUri": project.as_uri()})
    entry = next(s for s in listed["sessions"] if s["sessionId"] == result["sessionId"])
    assert entry["title"] == "What does PLAINMARK do?" and entry["messageCount"] == 4
    status = await daemon.run("deskmate.status")
    assert (status["encryption"], status["compression"]) == ("on", "zstd")
    assert status["encryptionKeyId"] == keys.key_id(base64.urlsafe_b64decode(KEY)) and KEY not in str(status)
    stored = b"".join(p.read_bytes() for p in (data_dir / "sessions").rglob("*") if p.is_file())
    assert (
        stored
        and b"PLAINMARK" not in stored
        and project.name.encode() not in stored.replace(result["sessionId"].encode(), b"")
    )


async def test_encryption_on_without_a_key_stores_nothing_and_says_why(start_daemon, project, data_dir):
    daemon = await start_daemon(
        folders=[project],
        settings={"encryption": "on"},
        env={"DESKMATE_ENCRYPTION_KEY_FILE": str(data_dir / "no-such.key")},
    )
    with pytest.raises(JsonRpcException, match="key"):
        await daemon.ask("is anything stored?")
    assert not list((data_dir / "sessions").glob("*.jsonl"))
    assert any("encryption is on" in m.message for m in daemon.client.messages)


async def test_a_bad_encryption_value_is_refused_by_name(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"encryption": "yes"})
    assert any("'encryption'" in m.message for m in daemon.client.messages)
    status = await daemon.run("deskmate.status")
    assert status["version"]


async def test_with_encryption_on_search_works_and_its_index_never_reaches_the_disk(
    start_daemon, project, data_dir, store_settings
):
    """On every store: the index of encrypted sessions lives in the daemon's memory (PostgreSQL's
    own search cannot read sealed rows); a second daemon builds its own from the store."""
    env = {"DESKMATE_ENCRYPTION_KEY": KEY}
    settings = {**store_settings, "encryption": "on"}
    daemon = await start_daemon(folders=[project], settings=settings, env=env)
    asked = await daemon.ask("Where is SEALEDMARK_parse defined?")
    await daemon.ask("And what calls it?")
    found = await daemon.run("deskmate.searchSessions", {"query": "sealedmark_parse"})
    assert found["total"] >= 1
    hit = found["results"][0]
    assert hit["sessionId"] == asked["sessionId"] and "SEALEDMARK_parse" in hit["snippet"]

    other = await start_daemon(folders=[project], settings=settings, env=env)  # another editor
    again = await other.run("deskmate.searchSessions", {"query": '"SEALEDMARK_parse defined"'})
    assert {r["sessionId"] for r in again["results"]} == {asked["sessionId"]}

    written = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert b"SEALEDMARK" not in written and b"sealedmark" not in written
    assert not list(data_dir.glob("search/*.sqlite3*"))
