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


class LockTimeout(Exception):
    pass


@contextmanager
def exclusive_lock(path: str, timeout: float, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with ``mode`` if missing) for the block.

    Raises LockTimeout after ``timeout`` seconds. The lock file is left in place:
    unlinking it would race with the next waiter.
    """
    if fcntl is None:
        from filelock import FileLock, Timeout

        try:
            with FileLock(path, timeout=timeout, mode=mode, preserve_lock_file=True):
                yield
        except Timeout:
            raise LockTimeout(path) from None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
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
