"""FileBackend on a full disk: StorageFull, nothing half-written, and a later append succeeds.

A real small filesystem: a 256 KiB tmpfs, mounted for the test (this needs root,
as on CI; elsewhere the tests skip and say why) and unmounted afterwards.
"""

import errno
import json
import os
import subprocess
import uuid

import pytest

from deskmate.memory import FileBackend, Message, Session, StorageError
from deskmate.memory.errors import StorageFull  # not exported by deskmate.memory (yet)

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 256 KiB tmpfs to fill needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


class Filler:
    """A file that takes every free byte of a filesystem, and gives some back on request."""

    def __init__(self, directory):
        self.path = directory / "filler"
        self.size = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                self.size += os.write(fd, b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

    def free(self, nbytes):
        self.size -= nbytes
        os.truncate(self.path, self.size)

    def remove(self):
        self.path.unlink()


def turn(i: int, size: int = 10) -> list[Message]:
    return [Message(role="user", content=f"q{i}"), Message(role="assistant", content=f"a{i}" + "." * size)]


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
    await backend.append("s", turn(0), title="Full")
    path = backend.path_of("s")
    before = path.read_bytes()
    filler = Filler(small_disk)
    filler.free(free_pages * PAGE)  # room for part of the turn: the write stops half way
    with pytest.raises(StorageFull) as caught:
        await backend.append("s", turn(1, size=64 * 1024))
    message = str(caught.value)
    assert message.startswith(f"The disk holding {backend.directory} is full: session s could not be saved")
    assert "(nothing was written)" in message and "Free some space" in message
    assert isinstance(caught.value, StorageError)
    assert path.read_bytes() == before  # a partial write is cut back
    filler.remove()
    await backend.append("s", turn(1, size=64 * 1024))
    await backend.append("s", turn(2))
    assert_whole_lines(path)
    loaded = await FileBackend(backend.root).load("s")  # a new process reads the file
    assert [m.content[:2] for m in loaded.messages] == ["q0", "a0", "q1", "a1", "q2", "a2"]
    assert (await backend.list())[0].message_count == 6


async def test_a_new_session_on_a_full_disk_leaves_no_file_behind(small_disk):
    backend = FileBackend(small_disk / "data")
    await backend.append("first", turn(0))
    filler = Filler(small_disk)
    with pytest.raises(StorageFull, match="session second could not be saved"):
        await backend.append("second", turn(0, size=64 * 1024))
    assert not backend.path_of("second").exists() and leftovers(backend) == []
    filler.remove()
    await backend.append("second", turn(0, size=64 * 1024))
    assert len((await backend.load("second")).messages) == 2


async def test_a_save_on_a_full_disk_keeps_the_old_file_and_no_temp_file(small_disk):
    backend = FileBackend(small_disk / "data")
    await backend.save(Session(id="s", title="Old", messages=turn(0)))
    before = backend.path_of("s").read_bytes()
    filler = Filler(small_disk)
    filler.free(PAGE)
    with pytest.raises(StorageFull, match="session s could not be saved"):
        await backend.save(Session(id="s", title="New", messages=turn(1, size=64 * 1024)))
    assert backend.path_of("s").read_bytes() == before and leftovers(backend) == []
    filler.remove()
    await backend.save(Session(id="s", title="New", messages=turn(1, size=64 * 1024)))
    assert (await FileBackend(backend.root).load("s")).title == "New"
