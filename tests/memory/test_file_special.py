"""FileBackend: symbolic links and special files in the store are reported, never followed or read.

Real links pointing outside the store and real FIFOs. A FIFO opened for reading
blocks until a writer comes, so the FIFO tests run the store in a child process
with a timeout: a hang fails the test instead of hanging the suite.
"""

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from deskmate.memory import FileBackend, Session, StorageError
from helpers import turn, write_jsonl

pytestmark = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="POSIX links and FIFOs")


@pytest.fixture
def backend(data_dir):
    return FileBackend(data_dir)


@pytest.fixture
def outside(tmp_path):
    """A valid session file outside the store, which a link in the store points to."""
    path = tmp_path / "elsewhere" / "secret.jsonl"
    header = {
        "deskmate": "session",
        "version": 1,
        "id": "secret",
        "title": "Secret",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    message = {"role": "user", "content": "private", "timestamp": "2026-01-01T00:00:00Z", "n": 1}
    write_jsonl(path, [header, message])
    return path


async def test_a_linked_session_file_is_not_loaded_appended_to_or_replaced(backend, outside):
    await backend.append("mine", turn(0))
    link = backend.path_of("linked")
    link.symlink_to(outside)
    before = outside.read_bytes()
    with pytest.raises(StorageError, match="is a symbolic link, not a regular file"):
        await backend.load("linked")
    with pytest.raises(StorageError, match="is a symbolic link"):
        await backend.append("linked", turn(1))
    with pytest.raises(StorageError, match="is a symbolic link"):
        await backend.save(Session(id="linked", messages=turn(2)))
    assert outside.read_bytes() == before  # the target is untouched
    assert link.is_symlink() and not list(backend.directory.glob("linked.jsonl.corrupt-*"))  # not moved
    assert await backend.delete("linked")  # deleting removes the link, not its target
    assert not os.path.lexists(link) and outside.read_bytes() == before


async def test_a_dangling_link_is_not_written_through(backend, tmp_path):
    await backend.append("mine", turn(0))
    target = tmp_path / "created-through-the-link.jsonl"
    backend.path_of("dangling").symlink_to(target)
    with pytest.raises(StorageError, match="symbolic link"):
        await backend.append("dangling", turn(1))
    assert not target.exists()


async def test_listing_skips_links_and_special_files_and_says_so(backend, outside, caplog):
    await backend.append("mine", turn(0), title="Mine")
    backend.path_of("linked").symlink_to(outside)
    backend.path_of("folder").mkdir()  # FIFOs: test_a_fifo_under_a_session_name_never_blocks
    with caplog.at_level(logging.WARNING, logger="deskmate.memory.backends.file.store"):
        infos = await backend.list()
    assert [(info.id, info.title) for info in infos] == [("mine", "Mine")]
    logged = caplog.text
    assert "linked.jsonl: it is a symbolic link" in logged
    assert "folder.jsonl: it is a directory" in logged


async def test_a_directory_under_a_session_name_is_refused(backend):
    await backend.append("mine", turn(0))
    backend.path_of("folder").mkdir()
    with pytest.raises(StorageError, match="is a directory, not a regular file"):
        await backend.load("folder")
    with pytest.raises(StorageError, match="is a directory"):
        await backend.append("folder", turn(0))


CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, sys
    from deskmate.memory import FileBackend, Message, Session, StorageError

    async def main():
        backend = FileBackend(sys.argv[1])
        results = {}
        calls = {
            "list": lambda: backend.list(),
            "load": lambda: backend.load("fifo"),
            "append": lambda: backend.append("fifo", [Message(role="user", content="q")]),
            "save": lambda: backend.save(Session(id="fifo")),
        }
        for name, call in calls.items():
            try:
                value = await call()
                results[name] = [info.id for info in value] if name == "list" else "returned"
            except StorageError as exc:
                results[name] = str(exc)
        print(json.dumps(results))

    logging.basicConfig(level=logging.WARNING)  # to stderr
    asyncio.run(main())
    """
)


def test_a_fifo_under_a_session_name_never_blocks(backend, data_dir):
    backend.directory.mkdir(parents=True)
    os.mkfifo(backend.path_of("fifo"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(data_dir)], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the store blocked on a FIFO named like a session file")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["list"] == []
    assert "fifo.jsonl: it is a FIFO (named pipe)" in done.stderr
    for name in ("load", "append", "save"):
        assert "is a FIFO (named pipe), not a regular file" in results[name], name
    assert backend.path_of("fifo").is_fifo()  # left where it is


async def test_a_linked_lock_file_is_not_followed(backend, tmp_path):
    await backend.append("mine", turn(0))
    target = tmp_path / "made-by-the-lock.txt"
    (backend.directory / ".locks" / "mine.lock").unlink()
    (backend.directory / ".locks" / "mine.lock").symlink_to(target)
    with pytest.raises(StorageError, match=r"lock file .*mine\.lock is a symbolic link"):
        await backend.append("mine", turn(1))
    assert not target.exists()
    assert len((await backend.load("mine")).messages) == 2


@pytest.mark.parametrize("child", ["sessions", "sessions/.locks"])
async def test_a_linked_store_folder_is_refused(data_dir, tmp_path, child):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data_dir / child).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / child).symlink_to(elsewhere)
    backend = FileBackend(data_dir)
    with pytest.raises(
        StorageError, match="is a symbolic link; deskmate does not follow links inside its data"
    ):
        await backend.append("s", turn(0))
    with pytest.raises(StorageError, match="symbolic link"):
        await backend.save(Session(id="s"))
    assert list(elsewhere.iterdir()) == []
    if child == "sessions":
        with pytest.raises(StorageError, match="symbolic link"):
            await backend.list()
        with pytest.raises(StorageError, match="symbolic link"):
            await backend.load("s")


async def test_a_linked_data_directory_is_the_users_choice(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    backend = FileBackend(tmp_path / "linked")
    await backend.append("s", turn(0), title="Through a link")
    assert (real / "sessions" / "s.jsonl").is_file()
    assert [info.title for info in await FileBackend(tmp_path / "linked").list()] == ["Through a link"]
