"""UnsavedOverlay: sessions that live in memory until saved explicitly (the autoSave: false mode).

A session is read from the store once, the first time it is used; from then on
the copy in memory is the truth, and appends change only it. ``commit`` writes a
session over the stored one; ``save`` (e.g. a new session) keeps it in memory.
With no store at all (``inner`` None) it holds a conversation that is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from .backend import MemoryBackend, MetaChange
from .errors import SessionChanged, SessionNotFound, StorageError
from .limits import clip_title
from .models import Message, Session, SessionInfo
from .watching import PollingWatch, SessionWatch


class UnsavedOverlay:
    def __init__(self, inner: MemoryBackend | None, sessions: dict[str, Session] | None = None) -> None:
        self.inner = inner
        self.sessions: dict[str, Session] = sessions if sessions is not None else {}
        self.changed: set[str] = set()  # sessions whose memory copy differs from the store's

    def __repr__(self) -> str:
        return f"UnsavedOverlay({self.inner!r}, {len(self.sessions)} in memory)"

    def holds(self, session_id: str) -> bool:
        """Whether ``session_id`` is served from memory."""
        return session_id in self.sessions

    def has_changes(self, session_id: str) -> bool:
        """Whether the session in memory holds what the store does not (it was changed since
        it was read or committed, or the store never had it)."""
        return session_id in self.changed

    async def _held(self, session_id: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None and self.inner is not None:
            session = await self.inner.load(session_id)
            if session is not None and not session.quarantined_to:
                self.sessions[session_id] = session  # read once: memory is the truth from now on
        return session

    # -- MemoryBackend ----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        session = await self._held(session_id)
        return session.copy() if session is not None and not session.quarantined_to else session

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        session = await self._held(session_id)
        if session is None or session.quarantined_to:
            session = Session(id=session_id, title=title, workspace_uri=workspace_uri)
            self.sessions[session_id] = session
        session.add(list(messages))
        self.changed.add(session_id)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Change the copy in memory, like a turn: the store gets it when the session is saved."""
        session = await self._held(session_id)
        if session is None or session.quarantined_to:
            return None
        title, meta = change(session.info())
        session.title, session.meta = clip_title(title), meta.copy()
        self.changed.add(session_id)
        return session.info()

    def follow(self, info: SessionInfo) -> None:
        """The store's title and metadata of a session changed: the copy in memory takes them
        (without counting as a change of its own: the store has them already)."""
        session = self.sessions.get(info.id)
        if session is not None:
            session.title, session.meta = info.title, info.meta.copy()

    def forget(self, session_id: str) -> None:
        """The session is gone from the store (purged): drop the copy in memory too."""
        self.sessions.pop(session_id, None)
        self.changed.discard(session_id)

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        if expected_messages is not None:
            held = await self._held(session.id)
            found = None if held is None or held.quarantined_to else len(held.messages)
            if found != expected_messages:
                raise SessionChanged(session.id, expected_messages, found)
        self.sessions[session.id] = session.copy()
        self.changed.add(session.id)

    async def save_copy(self, session: Session, source_id: str) -> None:
        await self.save(session)  # kept in memory, like any save while autoSave is off

    async def delete(self, session_id: str) -> bool:
        held = self.sessions.pop(session_id, None) is not None
        self.changed.discard(session_id)
        stored = await self.inner.delete(session_id) if self.inner is not None else False
        return stored or held

    async def list(self) -> list[SessionInfo]:
        infos = {info.id: info for info in await self.inner.list()} if self.inner is not None else {}
        infos.update((session_id, session.info()) for session_id, session in self.sessions.items())
        return sorted(infos.values(), key=lambda info: info.updated_at, reverse=True)

    # Project memories are no unsaved turns: they go straight to the store, whatever autoSave says.
    def _store(self) -> MemoryBackend:
        if self.inner is None:
            raise StorageError("Project memories need a session store; this conversation has none.")
        return self.inner

    async def load_memories(self, project: str) -> list[Message]:
        return await self._store().load_memories(project)

    async def memory_projects(self) -> list[str]:
        return await self._store().memory_projects()

    async def add_memory(self, project: str, memory: Message) -> None:
        await self._store().add_memory(project, memory)

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        return await self._store().delete_memory(project, memory_id)

    def watch(self) -> SessionWatch:
        """The store's watch; over no store (the unsaved scratch conversation) nothing else
        changes it, so a slow poll of memory."""
        if self.inner is not None:
            return self.inner.watch()

        async def read(session_id: str) -> SessionInfo | None:
            session = self.sessions.get(session_id)
            return None if session is None else session.info()

        return PollingWatch(read, 5.0)

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        return True if self.inner is None else await self.inner.claim_answer(session_id, holder, seconds)

    async def release_answer(self, session_id: str, holder: str) -> None:
        if self.inner is not None:
            await self.inner.release_answer(session_id, holder)

    async def close(self) -> None:
        """Nothing to release; ``inner`` belongs to whoever made this overlay."""

    # -- explicit saving ----------------------------------------------------------

    async def commit(self, session_id: str) -> Session:
        """Write the session in memory over the stored one, and return it."""
        session = await self._held(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        if self.inner is not None:
            await self.inner.save(session)
            self.changed.discard(session_id)
        return session.copy()

    async def reload(self, session_id: str) -> Session | None:
        """Replace the copy in memory with what the store holds (None: the store has none)."""
        self.sessions.pop(session_id, None)
        self.changed.discard(session_id)
        return await self.load(session_id)

    async def commit_all(self) -> None:
        """Write every session in memory to the store and forget them (autoSave turned back on)."""
        for session_id in list(self.sessions):
            await self.commit(session_id)
            del self.sessions[session_id]
