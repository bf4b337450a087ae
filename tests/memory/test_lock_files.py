"""LockFiles: lock files kept open between holds still exclude every other holder."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from deskmate.memory.locking import LockFiles, LockTimeout, exclusive_lock
from helpers import descriptors_to

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock-based: POSIX only")

# Another process tries the lock once: prints "locked" or "busy".
_TRY_FROM_ANOTHER_PROCESS = """
import sys
from deskmate.memory.locking import LockTimeout, exclusive_lock
try:
    with exclusive_lock(sys.argv[1], 0):
        print("locked")
except LockTimeout:
    print("busy")
"""


def other_process_gets(path) -> str:
    return subprocess.run(
        [sys.executable, "-c", _TRY_FROM_ANOTHER_PROCESS, str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_held_lock_excludes_other_processes_and_is_released_after(tmp_path):
    locks, path = LockFiles(), tmp_path / "s.lock"
    with locks.hold(str(path), 1):
        assert other_process_gets(path) == "busy"
    assert other_process_gets(path) == "locked"
    with locks.hold(str(path), 1):  # taken again through the descriptor kept open
        assert other_process_gets(path) == "busy"


def test_threads_sharing_the_kept_descriptor_take_turns(tmp_path):
    locks, path = LockFiles(), str(tmp_path / "s.lock")
    entered = threading.Event()
    leave = threading.Event()

    def hold_until_told() -> None:
        with locks.hold(path, 1):
            entered.set()
            leave.wait(5)

    holder = threading.Thread(target=hold_until_told)
    holder.start()
    try:
        assert entered.wait(5)
        with pytest.raises(LockTimeout):  # flock alone would let this thread in: same open file
            with locks.hold(path, 0.05):
                pass
    finally:
        leave.set()
        holder.join()
    with locks.hold(path, 1):
        pass


def test_a_lock_file_deleted_and_made_again_is_opened_anew(tmp_path):
    locks, path = LockFiles(), tmp_path / "s.lock"
    with locks.hold(str(path), 1):
        pass
    path.unlink()  # someone cleans up .locks; another process then makes the file again
    with exclusive_lock(str(path), 1):
        pass
    with locks.hold(str(path), 1):  # must lock the file now at that name, not the deleted one
        assert other_process_gets(path) == "busy"
    assert len(descriptors_to(path)) == 1


def test_a_lock_held_elsewhere_times_out(tmp_path):
    locks, path = LockFiles(), str(tmp_path / "s.lock")
    with exclusive_lock(path, 1):
        with pytest.raises(LockTimeout):
            with locks.hold(path, 0.05):
                pass


def test_at_most_keep_lock_files_stay_open(tmp_path):
    locks = LockFiles(keep=3)
    paths = [tmp_path / f"{n}.lock" for n in range(6)]
    for path in paths:
        with locks.hold(str(path), 1):
            pass
    assert [len(descriptors_to(p)) for p in paths] == [0, 0, 0, 1, 1, 1]  # the least recently used closed
    locks.close()
    assert [len(descriptors_to(p)) for p in paths] == [0] * 6


def test_closing_while_held_closes_when_the_hold_ends(tmp_path):
    locks, path = LockFiles(), tmp_path / "s.lock"
    with locks.hold(str(path), 1):
        locks.close()
        assert other_process_gets(path) == "busy"  # still held: the descriptor is in use
    assert len(descriptors_to(path)) == 0
    assert other_process_gets(path) == "locked"


def test_a_symbolic_link_is_refused_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "s.lock"
    link.symlink_to(target)
    with pytest.raises(OSError):
        with LockFiles().hold(str(link), 1):
            pass


def test_try_acquire_takes_only_a_free_lock_already_open(tmp_path):
    locks, path = LockFiles(), tmp_path / "s.lock"
    assert locks.try_acquire(str(path)) is None  # never opened: the caller's thread may not open files
    with locks.hold(str(path), 1):
        assert locks.try_acquire(str(path)) is None  # this process holds it (another thread's turn)
    with exclusive_lock(str(path), 1):
        assert locks.try_acquire(str(path)) is None  # another open file holds it
    held = locks.try_acquire(str(path))
    assert held is not None
    assert other_process_gets(path) == "busy"
    locks.release(held)
    assert other_process_gets(path) == "locked"


def test_try_acquire_refuses_a_lock_file_made_again(tmp_path):
    locks, path = LockFiles(), tmp_path / "s.lock"
    with locks.hold(str(path), 1):
        pass
    path.unlink()
    with exclusive_lock(str(path), 1):
        pass
    assert locks.try_acquire(str(path)) is None  # its descriptor locks the deleted file
    with locks.hold(str(path), 1):  # the waiting way opens the new one
        assert other_process_gets(path) == "busy"
