"""Live sessions in the file store: changes seen through inotify (``watchfiles``), and the
answering lease as a lock file held by the answering process.

The watch follows ``<root>/sessions`` itself (not its subfolders): every write of a session
ends in its file (an append writes it, a save or update renames a new file onto it, a
delete unlinks it), and the kernel reports each within milliseconds. Where native events
are unavailable (an exhausted inotify limit, say) or not to be trusted (``force_polling``:
network file systems, whose other clients' writes raise no local event), the summary of each
followed session is read every POLL_MS milliseconds instead.

The lease is an ``flock`` on ``sessions/.locks/<id>.answering``, held while the answer runs:
the kernel releases it when the holding process ends, however it ends, so a lease here
never needs to expire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ...atomic import FILE_MODE, ensure_private_dir
from ...models import SessionInfo
from ...watching import SessionWatch

try:
    import fcntl
except ImportError:  # Windows: filelock's lock, released by the OS when the process ends too
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STEP_MS = 20  # a burst of writes (a rename onto the file) is reported once, this long after it ends
DEBOUNCE_MS = 200  # ... but never later than this after it starts
POLL_MS = 250  # the fallback's polling interval
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class FileWatch(SessionWatch):
    """Changes under ``directory`` (``<id><suffix>`` files), from inotify or, failing that, polling."""

    mechanism = "inotify (watchfiles)"

    def __init__(
        self,
        directory: Path,
        root: Path,
        suffix: str,
        summarise: Callable[[Path], SessionInfo | None],
        path_of: Callable[[str], Path],
        *,
        force_polling: bool | None = None,
    ) -> None:
        async def read(session_id: str) -> SessionInfo | None:
            return await asyncio.to_thread(summarise, path_of(session_id))

        super().__init__(read)
        self.directory = directory
        self.root = root
        self.suffix = suffix
        if force_polling is None:  # watchfiles' own switch, for a store on a network file system
            setting = os.environ.get("WATCHFILES_FORCE_POLLING", "")
            force_polling = bool(setting) and setting.lower() not in {"false", "disable", "disabled"}
        self.force_polling = force_polling
        self._stop = threading.Event()  # seen by the notifier's thread

    async def close(self) -> None:
        self._stop.set()
        await super().close()

    async def _nudges(self) -> AsyncIterator[set[str] | None]:
        # The notifier watchfiles' own awatch drives, driven here so that the watch is known
        # to be in place (``ready``) before anything is reported.
        from watchfiles._rust_notify import RustNotify

        await asyncio.to_thread(ensure_private_dir, self.directory, inside=self.root)
        watcher = None
        if not self.force_polling:
            try:
                watcher = RustNotify([str(self.directory)], False, False, POLL_MS, False, False)
            except Exception as exc:
                log.warning(
                    "Cannot watch %s with file system events (%s); reading the open sessions every "
                    "%d ms instead",
                    self.directory,
                    exc,
                    POLL_MS,
                )
        if watcher is None:
            # Not watchfiles' own polling: it compares modification times to the second, and
            # would miss a second append within the same second. A summary is a few reads.
            self.mechanism = f"polling every {POLL_MS} ms"
            self.ready.set()
            while not await self._sleep(POLL_MS / 1000):
                if self._known:
                    yield None
            return
        self.mechanism = "inotify (watchfiles)"
        with watcher:
            self.ready.set()
            yield None  # what changed before the watch was in place
            while True:
                # Wakes at least every second, so a close is seen with nothing happening.
                raw = await asyncio.to_thread(watcher.watch, DEBOUNCE_MS, STEP_MS, 1000, self._stop)
                if self._closed.is_set() or raw in ("stop", "signal"):
                    return
                if raw == "timeout":
                    continue
                names = {Path(path).name for _, path in raw}
                yield {name[: -len(self.suffix)] for name in names if name.endswith(self.suffix)}


class FileLeases:
    """Answering leases as ``flock``s on ``<lock_dir>/<id>.answering``, held by this process."""

    def __init__(self, lock_dir: Path, root: Path) -> None:
        self.lock_dir = lock_dir
        self.root = root
        self._held: dict[str, tuple[str, int]] = {}  # session id -> holder, open descriptor
        self._windows_locks: dict[str, object] = {}  # filelock's locks, where there is no flock

    def claim(self, session_id: str, holder: str) -> bool:
        held = self._held.get(session_id)
        if held is not None:
            return held[0] == holder
        ensure_private_dir(self.lock_dir, inside=self.root)
        path = self.lock_dir / f"{session_id}.answering"
        if fcntl is None:
            from filelock import FileLock, Timeout

            lock = FileLock(str(path), timeout=0, mode=FILE_MODE)
            try:
                lock.acquire()
            except Timeout:
                return False
            self._held[session_id] = (holder, -1)
            self._windows_locks[session_id] = lock
            return True
        fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._held[session_id] = (holder, fd)
        return True

    def release(self, session_id: str, holder: str) -> None:
        held = self._held.get(session_id)
        if held is None or held[0] != holder:
            return
        del self._held[session_id]
        if held[1] >= 0:
            os.close(held[1])  # closing the descriptor releases the lock
        else:
            self._windows_locks.pop(session_id).release()  # type: ignore[attr-defined]

    def release_all(self) -> None:
        for session_id, (holder, _) in list(self._held.items()):
            self.release(session_id, holder)
