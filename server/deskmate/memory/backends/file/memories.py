"""Project memories in the file store: ``<root>/memories/<project>.json``, one file per project.

A change rewrites the file atomically (``replace_atomically``) under the project's lock
file, so writers in every thread and process take turns and a crash leaves the old or
the new list. A file that cannot be read is never overwritten: StorageError names it.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

from ...atomic import FILE_MODE, ensure_private_dir, is_real_dir, replace_atomically
from ...codec import dumps
from ...errors import StorageError, StorageFull
from ...locking import LockTimeout, exclusive_lock
from ...models import Message
from ...project_memories import decode_memory, encode_memory, ordered

FORMAT = "memories"
FORMAT_VERSION = 1
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FULL_ERRNOS = {errno.ENOSPC} | ({errno.EDQUOT} if hasattr(errno, "EDQUOT") else set())


class FileMemories:
    """The memories of every project under ``<root>/memories`` (mode 0700 directories, 0600 files)."""

    def __init__(self, root: Path, lock_timeout: float) -> None:
        self.root = root
        self.directory = root / "memories"
        self.lock_timeout = lock_timeout

    def path_of(self, project: str) -> Path:
        return self.directory / f"{project}.json"

    def load(self, project: str) -> list[Message]:
        if not is_real_dir(self.directory):
            return []
        return self._read(self.path_of(project))

    def projects(self) -> list[str]:
        if not is_real_dir(self.directory):
            return []
        names = (path.name for path in self.directory.iterdir() if path.is_file())
        return sorted(name.removesuffix(".json") for name in names if name.endswith(".json"))

    def change(self, project: str, edit: Callable[[list[Message]], bool]) -> bool:
        """Read the project's memories, let ``edit`` change the list in place, and write it
        back if ``edit`` returns True; returns what ``edit`` returned."""
        ensure_private_dir(self.directory / ".locks", inside=self.root)
        path = self.path_of(project)
        lock_path = str(self.directory / ".locks" / f"{project}.lock")
        try:
            with exclusive_lock(lock_path, self.lock_timeout, FILE_MODE):
                memories = self._read(path)
                if not edit(memories):
                    return False
                record = {"deskmate": FORMAT, "version": FORMAT_VERSION, "project": project}
                record["memories"] = [json.loads(encode_memory(m)) for m in ordered(memories)]
                try:
                    replace_atomically(path, (dumps(record) + "\n").encode())
                except OSError as exc:
                    if exc.errno in _FULL_ERRNOS:
                        raise StorageFull(
                            f"The disk holding {self.directory} is full: the project memory could not be "
                            "saved (nothing was written). Free some space and try again."
                        ) from exc
                    raise
                return True
        except LockTimeout:
            raise StorageError(
                f"The memories of project {project!r} are locked by another process for more than "
                f"{self.lock_timeout:.0f} s (lock file {lock_path})."
            ) from None

    def _read(self, path: Path) -> list[Message]:
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"{path} cannot be read ({exc.strerror}); it is left as it is.") from None
        with os.fdopen(fd, "rb") as file:
            data = file.read()
        try:
            record = json.loads(data)
        except ValueError:
            raise StorageError(
                f"{path} is not JSON; it is left as it is (move it away to start over)."
            ) from None
        if not isinstance(record, dict) or record.get("deskmate") != FORMAT:
            raise StorageError(f"{path} is not a deskmate memories file; it is left as it is.")
        if record.get("version") != FORMAT_VERSION:
            raise StorageError(
                f"{path} has version {record.get('version')!r}, which this deskmate does not know: upgrade deskmate."
            )
        items = record.get("memories")
        if not isinstance(items, list):
            raise StorageError(f"{path}: 'memories' is not a list; it is left as it is.")
        return ordered(decode_memory(item, str(path)) for item in items)
