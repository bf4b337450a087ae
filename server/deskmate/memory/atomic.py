"""Durable file writes: whole-file replacement and directory creation."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import StorageError

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: Path, *, inside: Path | None = None) -> Path:
    """Create ``path`` (and missing parents) if needed; every directory we create is 0700.

    Directories that already exist keep their mode: they are the user's. With
    ``inside`` (an ancestor of ``path``), the directories below it down to
    ``path`` are the caller's own: one that is a symbolic link or not a
    directory raises StorageError instead of being followed. ``inside`` itself
    and the directories above it may be links (the user's choice).
    """
    own = inside is not None and inside in path.parents
    if own:
        if is_real_dir(path):
            return path
    elif path.is_dir():
        return path
    ensure_private_dir(path.parent, inside=inside)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        # Another thread or process made it first (or put something else there).
        if own:
            is_real_dir(path)
        return path
    # mkdir's mode is filtered by the umask; make it exact.
    os.chmod(path, DIR_MODE)
    return path


def is_real_dir(path: Path) -> bool:
    """True if ``path`` is a directory (not a link to one), False if it is missing; else StorageError."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        return True
    if stat.S_ISLNK(mode):
        raise StorageError(
            f"{path} is a symbolic link; deskmate does not follow links inside its data directory. "
            "Remove the link (to keep sessions elsewhere, point dataDir there instead)."
        )
    raise StorageError(f"{path} is not a directory; deskmate needs a directory there. Move it away.")


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
    The temp file is created exclusively and never through a symbolic link, and
    ``os.replace`` replaces a link at ``path`` itself, never its target. If
    anything fails before the rename (a full disk: OSError ENOSPC), the temp file
    is removed and ``path`` is untouched.
    """
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            write_all(fd, data)
            sync_fd(fd)
        finally:
            os.close(fd)  # may itself report a full disk (NFS): still before the rename
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)
