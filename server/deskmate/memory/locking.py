"""An exclusive lock on a file, held across threads and processes.

On POSIX this is a few lines of ``flock``: measured, the general-purpose
``filelock`` package costs as much per append as the ``fdatasync`` itself, and
an append is the hot path of every answer. Elsewhere ``filelock`` does the work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
