"""FileBackend on a full disk: StorageFull, nothing half-written, and a later append succeeds.

A real small filesystem: a 256 KiB tmpfs, mounted for the test (this needs root,
as on CI; elsewhere the tests skip and say why) and unmounted afterwards.
"""

import json
import uuid

import pytest

from deskmate.memory import FileBackend, Session, StorageError
from deskmate.memory.errors import StorageFull  # not exported by deskmate.memory (yet)
from helpers import Filler, tmpfs, turn

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / f"small-{uuid.uuid4().hex[:6]}", "256k", mode="0700") as mount_point:
        yield mount_point


def leftovers(backend: FileBackend) -> list[str]:
    return sorted(p.name for p in backend.directory.iterdir() if p.name.endswith(".tmp"))


def assert_whole_lines(path):
    data = path.read_bytes()
    assert data.endswith(b"\n")
    for line in data.splitlines():
        json.loads(line)


@pytest.mark.parametrize("free_pages", [0, 2])
async def test_an_append_on_a_full_disk_writes_nothing_and_a_later_one_succeeds(small_disk, free_pages):
    backend = FileBackend(small_disk / "data")
    await backend.append("s", turn(0, padding=10), title="Full")
    path = backend.path_of("s")
    before = path.read_bytes()
    filler = Filler(small_disk)
    filler.free(free_pages * PAGE)  # room for part of the turn: the write stops half way
    with pytest.raises(StorageFull) as caught:
        await backend.append("s", turn(1, padding=64 * 1024))
    message = str(caught.value)
    assert message.startswith(f"The disk holding {backend.directory} is full: session s could not be saved")
    assert "(nothing was written)" in message and "Free some space" in message
    assert isinstance(caught.value, StorageError)
    assert path.read_bytes() == before  # a partial write is cut back
    filler.remove()
    await backend.append("s", turn(1, padding=64 * 1024))
    await backend.append("s", turn(2, padding=10))
    assert_whole_lines(path)
    loaded = await FileBackend(backend.root).load("s")  # a new process reads the file
    assert [m.content[:2] for m in loaded.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert (await backend.list())[0].message_count == 6


async def test_a_new_session_on_a_full_disk_leaves_no_file_behind(small_disk):
    backend = FileBackend(small_disk / "data")
    await backend.append("first", turn(0, padding=10))
    filler = Filler(small_disk)
    with pytest.raises(StorageFull, match="session second could not be saved"):
        await backend.append("second", turn(0, padding=64 * 1024))
    assert not backend.path_of("second").exists() and leftovers(backend) == []
    filler.remove()
    await backend.append("second", turn(0, padding=64 * 1024))
    assert len((await backend.load("second")).messages) == 2


async def test_a_save_on_a_full_disk_keeps_the_old_file_and_no_temp_file(small_disk):
    backend = FileBackend(small_disk / "data")
    await backend.save(Session(id="s", title="Old", messages=turn(0, padding=10)))
    before = backend.path_of("s").read_bytes()
    filler = Filler(small_disk)
    filler.free(PAGE)
    with pytest.raises(StorageFull, match="session s could not be saved"):
        await backend.save(Session(id="s", title="New", messages=turn(1, padding=64 * 1024)))
    assert backend.path_of("s").read_bytes() == before and leftovers(backend) == []
    filler.remove()
    await backend.save(Session(id="s", title="New", messages=turn(1, padding=64 * 1024)))
    assert (await FileBackend(backend.root).load("s")).title == "New"


async def test_a_conditional_save_counts_the_turns_held_for_space(small_disk):
    """A turn held in memory while the disk is full is part of what was read: a rewrite of
    that history is not refused for it, writes it, and it is held no longer."""
    from deskmate.memory.holding import HoldingBackend

    holding = HoldingBackend(FileBackend(small_disk / "data"), notify=lambda message: None, retry_initial=60)
    await holding.append("s", turn(0, padding=10), title="Held")
    filler = Filler(small_disk)
    await holding.append("s", turn(1, padding=64 * 1024))  # held: the disk is full
    assert holding.held_messages == 2
    session = await holding.load("s")
    assert len(session.messages) == 4
    filler.remove()
    await holding.save(session, expected_messages=4)
    assert holding.held_messages == 0
    loaded = await FileBackend(small_disk / "data").load("s")
    assert [m.content[:2] for m in loaded.messages] == ["q0", "a0", "q1", "a1"]
    await holding.close()
