"""IndexedBackend: a store whose writes also feed the search index, off their critical path.

Every write goes to the store first and returns as soon as the store has it; the index
is then updated on its own thread, in the order the writes happened. A failure of the
index is logged and repaired by the next catch-up, never reported as a failed write:
the index is derived data and can never be the reason a turn is lost.

With encryption on, the index is kept in the daemon's memory only (``in_memory``): searches
work as ever, nothing decrypted reaches the disk, and each daemon builds its own in the
background when it starts (PostgreSQL's own search cannot read sealed rows, so it is not used).

A catch-up compares the store's listing with what the index holds and re-indexes the
sessions that differ (all of them when the index file was deleted, damaged or made
by another version), reporting progress. One runs when the store is first used, and
again before a search when the last is older than ``CATCH_UP_EVERY`` seconds, so
writes by other processes (the CLI, another daemon on a shared store) are found too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .backend import MemoryBackend, MetaChange
from .errors import StorageError
from .models import Message, Session, SessionInfo
from .passing import PassesThrough
from .search_index import Filters, Hit, ListQuery, SearchIndex, drop_index_files

log = logging.getLogger(__name__)

CATCH_UP_EVERY = 60.0  # seconds
BATCH_MESSAGES = 5000  # a catch-up indexes about this many messages per transaction
Progress = Callable[[int, int], None]  # (sessions done, sessions to index)


class IndexedBackend(PassesThrough):
    """Wraps ``inner``; keeps the index at ``index_path`` in step with it."""

    def __init__(
        self,
        inner: MemoryBackend,
        index_path: Path,
        *,
        progress: Progress | None = None,
        in_memory: bool = False,
        on_damaged: Callable[[str, str], None] | None = None,
    ) -> None:
        self.inner = inner
        self.index_path = index_path
        self.progress = progress
        self._index: SearchIndex | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmate-index")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskmate-search")
        self._pending: set[asyncio.Future[Any]] = set()
        self._writes: dict[str, int] = {}  # a count of live writes per session, to spot races with a catch-up
        self._catch_up: asyncio.Task[None] | None = None
        self._caught_up_at = 0.0
        self.indexing: tuple[int, int] | None = None  # (done, total) while a catch-up runs
        self._closed = False
        # A catch-up's load of a damaged history moves it aside as any load does: the user is told.
        self.on_damaged = on_damaged
        # Encryption on: no copy of the messages in the clear on disk.
        self.in_memory = in_memory
        # A store that searches itself (PostgreSQL): no local index is kept or consulted.
        self.server_side = None if in_memory else _searcher_in(inner)

    def __repr__(self) -> str:
        return f"IndexedBackend({self.inner!r})"

    def __getattr__(self, name: str) -> Any:  # what wrappers below expose (unavailable, held_messages)
        return getattr(self.inner, name)

    # -- the store ------------------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        self.start()
        return await self.inner.load(session_id)

    async def list(self) -> list[SessionInfo]:
        self.start()
        return await self.inner.list()

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        await self.inner.append(session_id, messages, title=title, workspace_uri=workspace_uri)
        self._later(session_id, "add_messages", session_id, list(messages), title, workspace_uri)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        info = await self.inner.update(session_id, change)
        if info is None:
            return info
        if info.meta.deleted_at:  # in the trash: out of search until it is restored
            self._later(session_id, "remove", session_id)
        elif self.server_side is None and self._index is not None:
            # Back from the trash (or merely renamed): index it whole if the index lacks it.
            held = await asyncio.get_running_loop().run_in_executor(self._writer, self._holds, session_id)
            session = await self.inner.load(session_id) if not held else None
            if session is not None and not session.quarantined_to:
                self._later(session_id, "replace", session.copy())
            else:
                self._later(session_id, "put_session", info)
        return info

    def _holds(self, session_id: str) -> bool:
        """Whether the index has the session (in the index's writer thread)."""
        index = self._index
        return index is not None and index.holds(session_id)

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        await self.inner.save(session, expected_messages=expected_messages)
        self._later(session.id, "replace", session.copy())

    async def delete(self, session_id: str) -> bool:
        deleted = await self.inner.delete(session_id)
        self._later(session_id, "remove", session_id)
        return deleted

    async def close(self) -> None:
        self._closed = True
        if self._catch_up is not None:
            self._catch_up.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._index is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._close_index)
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)
        await self.inner.close()

    # -- the index --------------------------------------------------------------------

    def start(self) -> None:
        """Open the index and catch up with the store, in the background (once)."""
        if self._catch_up is None and self.server_side is None and not self._closed:
            self._catch_up = asyncio.ensure_future(self._catch_up_now())

    async def list_page(self, query: ListQuery, offset: int, limit: int) -> list[SessionInfo] | None:
        """A page of the listing, from the store itself when it pages (PostgreSQL), else from the
        index once it has caught up with the store; None when neither can answer yet."""
        if self.server_side is not None:
            pager = getattr(self.server_side, "list_page", None)
            return await pager(query, offset, limit) if pager is not None else None
        if self._closed:
            return None
        self.start()
        assert self._catch_up is not None
        if self._catch_up.done() and time.monotonic() - self._caught_up_at > CATCH_UP_EVERY:
            self._catch_up = asyncio.ensure_future(self._catch_up_now())
        if self._index is None or not self._caught_up_at:
            return None  # not caught up (yet, or since a change it missed): the caller lists the store
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, _nothing)  # every write queued so far is in it
        return await loop.run_in_executor(self._searcher, self._index.page, query, offset, limit)

    async def search(self, query: str, filters: Filters, limit: int) -> tuple[list[Hit], int]:
        """Search the index once it has caught up and every write made so far is in it."""
        if self.server_side is not None:
            return await self.server_side.search(query, filters, limit)
        if self._closed:
            raise StorageError("The search index was closed (the settings moved the store); search again.")
        self.start()
        assert self._catch_up is not None
        if not self._catch_up.done():
            await asyncio.shield(self._catch_up)
        elif time.monotonic() - self._caught_up_at > CATCH_UP_EVERY:
            self._catch_up = asyncio.ensure_future(self._catch_up_now())  # answers meanwhile from what it has
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, _nothing)  # every write queued so far is indexed
        index = self._index
        if index is None:
            raise StorageError(f"The search index {self.index_path} could not be opened; see the log.")
        return await loop.run_in_executor(self._searcher, index.search, query, filters, limit)

    def _later(self, session_id: str, operation: str, *args: Any) -> None:
        if self.server_side is not None or self._closed:
            return  # closed: a write still finishing on the old store (the settings moved it)
        self._writes[session_id] = self._writes.get(session_id, 0) + 1
        future = asyncio.get_running_loop().run_in_executor(self._writer, self._apply, operation, args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _apply(self, operation: str, args: tuple[Any, ...]) -> None:
        index = self._index
        if index is None:
            return  # not open (yet, or it failed): the catch-up after opening indexes the store
        try:
            getattr(index, operation)(*args)
        except Exception as exc:  # derived data: the next catch-up repairs it
            log.warning(
                "The search index missed a change (%s: %s); it is repaired at the next catch-up.",
                operation,
                exc,
            )
            self._caught_up_at = 0.0

    @property
    def _searcher(self) -> ThreadPoolExecutor:
        """The thread searches run in: the writer's when the index in memory has one connection."""
        return self._writer if self.in_memory else self._reader

    async def keep_in_memory(self, in_memory: bool) -> None:
        """Move the index to memory (encryption turned on) or back to its file; rebuilt there."""
        if in_memory == self.in_memory:
            return
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        await asyncio.get_running_loop().run_in_executor(self._writer, self._close_index)
        self.in_memory = in_memory
        self.server_side = None if in_memory else _searcher_in(self.inner)
        self._caught_up_at = 0.0

    def _open_index(self) -> None:
        if self._index is None:
            if self.in_memory:
                drop_index_files(self.index_path)  # a copy in the clear from before encryption
            self._index = SearchIndex(None if self.in_memory else self.index_path)

    def _close_index(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    async def _catch_up_now(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._writer, self._open_index)
            index = self._index
            assert index is not None
            # Sessions in the trash are not searched (a restore puts them back).
            listed = {info.id: info for info in await self.inner.list() if not info.meta.deleted_at}
            held = await loop.run_in_executor(self._writer, index.indexed)
            gone = [session_id for session_id in held if session_id not in listed]
            for session_id in gone:
                self._later(session_id, "remove", session_id)
            stale = []
            for session_id, info in listed.items():
                summary = held.get(session_id)
                if summary == index.summary_of(info):
                    continue
                if summary is not None and summary[:2] == index.summary_of(info)[:2]:
                    self._later(session_id, "put_session", info)  # only its title or tags changed
                else:
                    stale.append(info)
            stale.sort(key=lambda info: info.updated_at)  # oldest first: later rows are the recent ones
            await self._reindex(stale)
            await loop.run_in_executor(self._writer, _nothing)
            self._caught_up_at = time.monotonic()
        except Exception as exc:
            log.warning("Could not bring the search index %s up to date: %s", self.index_path, exc)
        finally:
            self.indexing = None

    async def _reindex(self, stale: list[SessionInfo]) -> None:
        """Load the stale sessions and index them afresh, in batches: the next batch loads while
        the index thread writes the last. A session written to while it loaded is loaded again."""
        total = len(stale)
        if total:
            where = "memory (encryption is on)" if self.in_memory else self.index_path
            log.info("Indexing %d session(s) for search in %s", total, where)
        loop = asyncio.get_running_loop()
        writing: asyncio.Future[Any] | None = None
        done = 0
        queue = list(stale)
        while queue:
            batch, queue, size = [], queue, 0
            while queue and size < BATCH_MESSAGES:
                info = queue.pop(0)
                writes = self._writes.get(info.id, 0)
                try:
                    session = await self.inner.load(info.id)
                except StorageError as exc:
                    log.warning("Session %r could not be indexed: %s", info.id, exc)
                    done += 1
                    continue
                if self._writes.get(info.id, 0) != writes:
                    queue.append(info)  # a write raced the load: load it again later
                    continue
                if session is not None and session.quarantined_to and self.on_damaged is not None:
                    self.on_damaged(info.id, session.quarantined_to)
                if session is None or session.quarantined_to:
                    self._later(info.id, "remove", info.id)
                    done += 1
                    continue
                batch.append((session, writes))
                size += len(session.messages) + 1
            if writing is not None:
                await writing
            self._report(done, total)
            # Queued with no await since this check: later writes are applied after it.
            fresh = [session for session, writes in batch if self._writes.get(session.id, 0) == writes]
            queue.extend(
                session.info() for session, writes in batch if self._writes.get(session.id, 0) != writes
            )
            if fresh:
                writing = loop.run_in_executor(self._writer, self._apply, "replace_many", (fresh,))
                done += len(fresh)
        if writing is not None:
            await writing
        self._report(total, total)

    def _report(self, done: int, total: int) -> None:
        self.indexing = (done, total) if done < total else None
        if self.progress is not None and total:
            self.progress(done, total)


def _nothing() -> None:
    pass


def _searcher_in(backend: Any) -> Any:
    """The store under the wrappers, if it searches by itself (has ``search``)."""
    while backend is not None:
        if callable(getattr(type(backend), "search", None)):
            return backend
        backend = getattr(backend, "inner", None)
    return None
