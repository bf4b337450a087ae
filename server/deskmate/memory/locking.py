"""An exclusive lock on a file, held across threads and processes.

On POSIX this is a few lines of ``flock``: measured, the general-purpose
``filelock`` package costs as much per append as the ``fdatasync`` itself, and
an append is the hot path of every answer. Elsewhere ``filelock`` does the work.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.001
# A lock file that is a symbolic link is refused (ELOOP), not followed: flags cost
# no system call. O_NONBLOCK: a FIFO planted under the lock's name never blocks the open.
_OPEN_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


class LockTimeout(Exception):
    pass


@contextmanager
def exclusive_lock(path: str, timeout: float, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with ``mode`` if missing) for the block.

    Raises LockTimeout after ``timeout`` seconds, and OSError (ELOOP) if ``path``
    is a symbolic link: the lock never follows one. The lock file is left in
    place: unlinking it would race with the next waiter.
    """
    if fcntl is None:
        from filelock import FileLock, Timeout

        try:
            with FileLock(path, timeout=timeout, mode=mode, preserve_lock_file=True):
                yield
        except Timeout:
            raise LockTimeout(path) from None
        return
    fd = os.open(path, _OPEN_FLAGS, mode)
    try:
        deadline = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                deadline = deadline or now + timeout
                if now >= deadline:
                    raise LockTimeout(path) from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


KEEP_OPEN = 32  # lock files (and the files kept beside them) left open between uses


class HeldLock:
    """One lock file kept open, and the one file its holder keeps open beside it between holds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self.identity: tuple[int, int] | None = None  # (device, inode) of the lock file opened
        self.turn = threading.Lock()  # flock does not order threads sharing one open file
        self.retired = False
        self.last_used = 0
        self.fallback: Any = None  # without fcntl: the exclusive_lock held
        self.file = -1
        self.file_identity: tuple[int, int] | None = None

    def keep_file(self, fd: int, identity: tuple[int, int]) -> None:
        """Keep ``fd`` open until the next hold that does not want it (or until the lock closes)."""
        self.close_file()
        self.file, self.file_identity = fd, identity

    def close_file(self) -> None:
        fd = self.forget_file()
        if fd >= 0:
            os.close(fd)

    def forget_file(self) -> int:
        """Stop keeping the file (its descriptor, returned, is now the caller's to close)."""
        fd, self.file, self.file_identity = self.file, -1, None
        return fd

    def close(self) -> None:
        self.close_file()
        if self.fd >= 0:
            fd, self.fd, self.identity = self.fd, -1, None
            os.close(fd)  # releases the lock, if this process held it through this descriptor


class LockFiles:
    """Exclusive locks on lock files, as ``exclusive_lock`` takes them, with the files kept open.

    An append takes its session's lock once per answer. Opening and closing the lock file each
    time, and the session file beside it, measured as most of what an append cost over a bare
    ``write`` + ``fdatasync``; kept open, taking the lock is one ``flock`` and one ``stat`` (a
    lock file deleted and made again by someone else is opened anew, or two holders would
    each lock a different file). At most ``keep`` are kept, the least recently used closed
    first. POSIX only: elsewhere ``hold`` is ``exclusive_lock`` and keeps nothing.
    """

    def __init__(self, mode: int = 0o600, keep: int = KEEP_OPEN) -> None:
        self.mode = mode
        self.keep = keep
        self._held: dict[str, HeldLock] = {}
        self._guard = threading.Lock()
        self._pid = os.getpid()
        self._uses = itertools.count()  # which lock was used least recently
        self._finalizer = weakref.finalize(self, _close_all, self._held)

    def acquire(self, path: str, timeout: float) -> HeldLock:
        """Take ``path``'s lock, to ``release`` it later (LockTimeout after ``timeout`` s; OSError
        ELOOP for a link). ``hold`` is the same as a ``with`` block; the hot path calls these."""
        if fcntl is None:
            held = HeldLock(path)
            held.fallback = exclusive_lock(path, timeout, self.mode)
            held.fallback.__enter__()
            return held
        deadline = time.monotonic() + timeout
        held = self._take_turn(path, timeout)
        try:
            self._lock(held, deadline)
        except BaseException:
            self._end_turn(held)
            raise
        return held

    def try_acquire(self, path: str) -> HeldLock | None:
        """``path``'s lock if it can be had at once through a lock file already open, else None.

        Never waits and never opens a file: safe on an event loop's thread.
        """
        held = self._held.get(path)
        if fcntl is None or held is None or held.fd < 0 or self._pid != os.getpid():
            return None
        if not held.turn.acquire(blocking=False):
            return None
        try:
            if not held.retired:
                fcntl.flock(held.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                try:
                    now = os.stat(path, follow_symlinks=False)
                    if (now.st_dev, now.st_ino) == held.identity:
                        return held
                except OSError:
                    pass
                fcntl.flock(held.fd, fcntl.LOCK_UN)
        except OSError:  # BlockingIOError: another process holds it
            pass
        self._end_turn(held)
        return None

    def release(self, held: HeldLock) -> None:
        """Let go of a lock ``acquire`` or ``try_acquire`` took (its files stay open)."""
        if held.fallback is not None:
            held.fallback.__exit__(None, None, None)
            return
        fcntl.flock(held.fd, fcntl.LOCK_UN)
        self._end_turn(held)

    @contextmanager
    def hold(self, path: str, timeout: float) -> Iterator[HeldLock]:
        """Hold ``path``'s lock for the block (LockTimeout after ``timeout`` s; OSError ELOOP for a link)."""
        held = self.acquire(path, timeout)
        try:
            yield held
        finally:
            self.release(held)

    def close(self) -> None:
        """Close every kept file, those in use when their hold ends (a later hold opens them again)."""
        with self._guard:
            for held in self._held.values():
                held.retired = True
                if held.turn.acquire(blocking=False):
                    held.close()
                    held.turn.release()
            self._held.clear()

    def _take_turn(self, path: str, timeout: float) -> HeldLock:
        while True:
            held = self._held.get(path)
            if held is None or self._pid != os.getpid():
                with self._guard:
                    if self._pid != os.getpid():
                        self._forget_inherited()
                    held = self._held.setdefault(path, HeldLock(path))
            held.last_used = next(self._uses)
            if not held.turn.acquire(timeout=max(timeout, 0)):
                raise LockTimeout(path)
            if not held.retired:
                return held
            held.turn.release()  # closed by _trim meanwhile: take the path's new entry

    def _end_turn(self, held: HeldLock) -> None:
        if held.retired:  # closed while in use: its files are closed now, by their user
            held.close()
        held.turn.release()
        if len(self._held) > self.keep:
            self._trim()

    def _lock(self, held: HeldLock, deadline: float) -> None:
        while True:
            if held.fd < 0:
                held.fd = os.open(held.path, _OPEN_FLAGS, self.mode)
                stat = os.fstat(held.fd)
                held.identity = (stat.st_dev, stat.st_ino)
            _flock(held.fd, deadline, held.path)
            try:
                now = os.stat(held.path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == held.identity:
                return
            fcntl.flock(held.fd, fcntl.LOCK_UN)
            os.close(held.fd)
            held.fd, held.identity = -1, None

    def _trim(self) -> None:
        with self._guard:
            by_age = sorted(self._held.values(), key=lambda held: held.last_used)
            for held in by_age[: max(len(self._held) - self.keep, 0)]:
                if held.turn.acquire(blocking=False):  # one in use is left for a later trim
                    held.retired = True
                    del self._held[held.path]
                    held.close()
                    held.turn.release()

    def _forget_inherited(self) -> None:
        # A forked child: the descriptors are shared with the parent, whose locks they may be
        # holding. Closing the child's copies leaves those locks held; unlocking would not.
        _close_all(self._held)
        self._pid = os.getpid()


def _flock(fd: int, deadline: float, path: str) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(path) from None
            time.sleep(POLL_SECONDS)


def _close_all(held: dict[str, HeldLock]) -> None:
    for lock in held.values():
        lock.retired = True
        lock.close()
    held.clear()
