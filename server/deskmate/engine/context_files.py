"""Reading a file the user names as context: only regular files, only inside the allowed folders, size-capped.

What is read is sent to a model and stored in the session, so the daemon reads
nothing a client merely names: not ``/etc/passwd``, not ``/proc/self/environ``
(which holds the API key), not a FIFO that would hang the read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..memory.limits import MAX_CONTEXT_FILE_BYTES
from .errors import EngineError

# Never read, whatever folder is open: kernel and device views, not files.
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


class ContextRefused(EngineError):
    """A context file deskmate will not read; the message says why."""


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def resolve_allowed(path: Path, folders: Iterable[Path] | None) -> str:
    """The real path of ``path`` if it may be read: raises ContextRefused naming the reason otherwise.

    ``folders`` None allows any folder (the terminal, where the user names the file themselves).
    """
    if not path.is_absolute():
        raise ContextRefused(f"{path} is not an absolute path")
    real = os.path.realpath(path)
    if any(_inside(real, root) for root in SPECIAL_ROOTS):
        raise ContextRefused(f"{path} is a system file ({real}), which deskmate never reads")
    if folders is not None:
        roots = [os.path.realpath(folder) for folder in folders]
        if not any(_inside(real, root) for root in roots):
            raise ContextRefused(
                f"{path} is outside every workspace folder; deskmate reads only files in the open "
                "folders (or documents the editor has open)"
            )
    return real


def read_context_file(path: Path, folders: Iterable[Path] | None) -> tuple[str, str | None]:
    """The text of ``path`` (UTF-8, undecodable bytes replaced) and a note when it was cut.

    Blocking: run it in a thread. Raises ContextRefused for a path outside ``folders``,
    a system file, or anything that is not a regular file.
    """
    real = resolve_allowed(path, folders)
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except FileNotFoundError:
        raise ContextRefused(f"{path} does not exist") from None
    except OSError as exc:
        raise ContextRefused(f"{path} cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ContextRefused(f"{path} is not a regular file (a FIFO, device or directory)")
        data = os.read(fd, MAX_CONTEXT_FILE_BYTES)
        while len(data) < min(info.st_size, MAX_CONTEXT_FILE_BYTES):  # short reads on some filesystems
            more = os.read(fd, MAX_CONTEXT_FILE_BYTES - len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    note = None
    if info.st_size > len(data):
        note = f"only the first {len(data):,} of {info.st_size:,} bytes were read"
    return data.decode("utf-8", "replace"), note
