"""``deskmate keys`` and ``deskmate sessions migrate --encrypt / --rekey`` on real stores, killed
with SIGKILL part way and run again: nothing lost, everything sealed with the current key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env
from deskmate.memory import Message, Session, codec, keys
from deskmate.memory.migrate import content_hash
from deskmate.memory.models import SessionMeta
from deskmate.memory.reseal import _sealed_with
from deskmate.memory.sealed import SealedLabels
from deskmate.memory.urls import backend_for_url
from helpers import kill_after
from memory import store_file, store_postgres, store_redis, store_s3  # noqa: E402

SESSIONS = 30


def deskmate(
    *args: str, env: dict[str, str], code: int | None = 0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    if code is not None:
        assert proc.returncode == code, proc.stderr
    return proc


@pytest.fixture(params=["file", "postgres", "redis", "s3"])
def store(request, tmp_path):
    module = {"file": store_file, "postgres": store_postgres, "redis": store_redis, "s3": store_s3}[
        request.param
    ]
    namespace = f"t{tmp_path.name[-8:].replace('_', '')}x"
    url = module.url_for(namespace, tmp_path)
    yield url, module, namespace
    module.cleanup(namespace)


@pytest.fixture
def key_env(tmp_path, monkeypatch):
    """The environment of the commands: a key file of the test's own (and this process reads it too)."""
    key_file = tmp_path / "deskmate.key"
    monkeypatch.setenv(keys.ENV_KEY_FILE, str(key_file))
    monkeypatch.delenv(keys.ENV_KEY, raising=False)
    keys.forget_loaded_keys()
    yield key_file
    keys.forget_loaded_keys()
    codec.set_writing(None)


def conversation(i: int) -> list[Message]:
    return [
        Message(
            role="user",
            content=f"SECRETQ {i} ünï 😀",
            id=f"q{i}",
            context={"uri": "file:///x", "text": "CTX" * 90},
        ),
        Message(role="assistant", content=f"SECRETA {i} " + "code line\n" * 40, id=f"a{i}"),
    ]


async def fill(url: str) -> dict[str, str]:
    backend = backend_for_url(url)
    try:
        for i in range(SESSIONS):
            await backend.save(
                Session(
                    id=f"s{i:03d}",
                    title=f"SECRETTITLE {i}",
                    workspace_uri=f"file:///home/me/SECRETWS{i}",
                    meta=SessionMeta(tags=["SECRETTAG"]),
                    messages=conversation(i) + conversation(i + 1000),
                )
            )
        return {info.id: content_hash(await backend.load(info.id)) for info in await backend.list()}
    finally:
        await backend.close()


async def read_all(url: str) -> tuple[dict[str, str], dict[str, set[str | None]]]:
    """Every session's content hash, opened with the keys in the environment, and the key ids sealing it."""
    keys.forget_loaded_keys()
    store = SealedLabels(backend_for_url(url), seal=False)
    try:
        hashes, sealed_by = {}, {}
        for info in await store.list():
            sealed_by[info.id] = (await _sealed_with(store, info.id))[0]  # first: a fresh parse
            hashes[info.id] = content_hash(await store.load(info.id))
        return hashes, sealed_by
    finally:
        await store.close()


def test_keys_init_and_status_show_ids_never_keys(tmp_path, key_env):
    env = clean_env(**{keys.ENV_KEY_FILE: str(key_env)})
    made = deskmate("keys", "init", "--file", str(key_env), env=env)
    key = key_env.read_text().strip()
    kid = keys.key_id(keys.decode_key(key, "test"))
    assert f"Created key {kid}" in made.stdout and key not in made.stdout
    assert key_env.stat().st_mode & 0o077 == 0
    status = deskmate("keys", "status", env=env)
    assert f"current key: {kid}" in status.stdout and key not in status.stdout + status.stderr
    again = deskmate("keys", "init", "--file", str(key_env), env=env, code=1)
    assert "--rotate" in again.stderr and key_env.read_text().strip() == key
    key_env.chmod(0o644)
    loose = deskmate("keys", "status", env=env, code=1)
    assert "chmod 600" in loose.stderr


async def test_encrypt_killed_then_resumed_then_rekey_killed_then_resumed(store, tmp_path, key_env):
    url, module, namespace = store
    env = clean_env(
        **{keys.ENV_KEY_FILE: str(key_env), "DESKMATE_STORAGE_URL": url, "DESKMATE_COMPRESSION": "zstd"}
    )
    deskmate("keys", "init", "--file", str(key_env), env=env)
    first_kid = keys.key_id(keys.decode_key(key_env.read_text().splitlines()[0], "test"))
    original = await fill(url)

    command = [sys.executable, "-m", "deskmate", "sessions", "migrate", "--encrypt"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    kill_after(proc, proc.stderr, "resealed", 8)
    hashes, sealed_by = await read_all(url)
    assert hashes == original  # killed part way: every session whole, sealed or not
    assert {first_kid} in sealed_by.values() and {None} in sealed_by.values()

    finished = deskmate("sessions", "migrate", "--encrypt", env=env)
    assert "already sealed" in finished.stderr and f"{SESSIONS * 4} messages verified" in finished.stdout
    hashes, sealed_by = await read_all(url)
    assert hashes == original and all(kids == {first_kid} for kids in sealed_by.values())
    stored = module.stored_bytes(namespace, tmp_path)
    assert not [
        m
        for m in (b"SECRETQ", b"SECRETA", b"SECRETTITLE", b"SECRETWS", b"SECRETTAG", b"CTXCTX")
        if m in stored
    ]

    deskmate("keys", "init", "--file", str(key_env), "--rotate", env=env)
    new_kid = keys.key_id(keys.decode_key(key_env.read_text().splitlines()[0], "test"))
    command = [sys.executable, "-m", "deskmate", "sessions", "migrate", "--rekey"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    kill_after(proc, proc.stderr, "resealed", 10)
    hashes, sealed_by = await read_all(url)
    assert hashes == original and {new_kid} in sealed_by.values() and {first_kid} in sealed_by.values()

    finished = deskmate("sessions", "migrate", "--rekey", env=env)
    assert f"older key(s) {first_kid}" in finished.stdout
    key_env.write_text(key_env.read_text().splitlines()[0] + "\n")  # the old key dropped
    hashes, sealed_by = await read_all(url)
    assert hashes == original and all(kids == {new_kid} for kids in sealed_by.values())


async def test_migrating_an_encrypted_store_elsewhere_keeps_it_encrypted(tmp_path, key_env, redis_url):
    env = clean_env(**{keys.ENV_KEY_FILE: str(key_env), "DESKMATE_ENCRYPTION": "on"})
    deskmate("keys", "init", "--file", str(key_env), env=env)
    source = (tmp_path / "files").as_uri()
    original = await fill(source)
    deskmate("sessions", "migrate", "--encrypt", env={**env, "DESKMATE_STORAGE_URL": source})
    copied = deskmate("sessions", "migrate", "--from", source, "--to", redis_url, env=env)
    assert f"{SESSIONS} copied" in copied.stdout
    hashes, sealed_by = await read_all(redis_url)
    assert hashes == original and all(len(kids) == 1 and None not in kids for kids in sealed_by.values())
    prefix = redis_url.rsplit("prefix=", 1)[1]
    stored = store_redis.stored_bytes(prefix)
    assert b"SECRETQ" not in stored and b"SECRETTITLE" not in stored and b"SECRETTAG" not in stored


def keychain_env(tmp_path, **extra: str) -> dict[str, str]:
    """An environment whose OS keychain is keyring's JSON-file test backend (tests/keyring_file_backend.py)."""
    tests = str(Path(__file__).parent)
    return clean_env(
        PYTHON_KEYRING_BACKEND="keyring_file_backend.JsonFileKeyring",
        DESKMATE_TEST_KEYRING_FILE=str(tmp_path / "keychain.json"),
        PYTHONPATH=os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])),
        **extra,
    )


def test_keys_init_puts_the_key_in_the_keychain_and_ask_uses_it(tmp_path, project, model_server, data_dir):
    env = keychain_env(
        tmp_path,
        DESKMATE_ENCRYPTION="on",
        DESKMATE_BASE_URL=model_server.base_url,
        DESKMATE_MODEL="test-model",
        DESKMATE_DATA_DIR=str(data_dir),
    )
    made = deskmate("keys", "init", env=env)
    assert "in the OS keychain" in made.stdout
    stored = json.loads((tmp_path / "keychain.json").read_text())
    key = stored[f"{keys.KEYRING_SERVICE}\0{keys.KEYRING_ENTRY}"].strip()
    kid = keys.key_id(keys.decode_key(key, "test"))
    assert f"current key: {kid}" in deskmate("keys", "status", env=env).stdout
    assert "already holds key" in deskmate("keys", "init", env=env, code=1).stderr

    asked = deskmate("ask", "what is KEYCHAINMARK?", env=env, cwd=project)
    assert "KEYCHAINMARK" in asked.stdout  # the answer echoes the question
    on_disk = b"".join(p.read_bytes() for p in (data_dir / "sessions").glob("*.jsonl"))
    assert on_disk and b"KEYCHAINMARK" not in on_disk and f'"kid":"{kid}"'.encode() in on_disk

    rotated = deskmate("keys", "init", "--rotate", env=env)
    assert f"Older key(s) {kid} are kept" in rotated.stdout
    shown = deskmate("sessions", "show", env=env, cwd=project)
    assert "KEYCHAINMARK" in shown.stdout  # opened with the older key
