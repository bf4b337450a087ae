"""Durable file writes: whole-file replacement and directory creation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if needed; every directory we create is 0700.

    Directories that already exist keep their mode: they are the user's.
    """
    if path.is_dir():
        return path
    ensure_private_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return path  # another thread or process made it first
    # mkdir's mode is filtered by the umask; make it exact.
    os.chmod(path, DIR_MODE)
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_fd(fd: int) -> None:
    # fdatasync flushes the data and the size, which is all a reader needs.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash at any instant leaves the old or the new file.

    A uniquely named temp file in the same directory is written, synced and
    renamed over ``path``; then the directory is synced so the rename sticks.
    """
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        write_all(fd, data)
        sync_fd(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temp_name)
        raise
    os.close(fd)
    try:
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
    fsync_dir(directory)
