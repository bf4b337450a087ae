"""The MemoryBackend protocol: the narrow interface every session store implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from .models import Message, Session, SessionInfo, SessionMeta
from .watching import SessionWatch

# Given a stored session's summary, the title and metadata record it should have.
MetaChange = Callable[[SessionInfo], tuple[str, SessionMeta]]


@runtime_checkable
class MemoryBackend(Protocol):
    """Async storage of conversations, one session per id.

    Every method validates the session id first (see ``ids.validate_session_id``)
    and raises ``SessionStoreError`` subclasses with messages meant for users;
    ``BackendUnavailable`` when the store cannot be reached, so callers can keep
    the work and retry. Implementations must be safe to call from many tasks at
    once, connect lazily (constructing one never fails for a server that is
    down), and never put credentials in messages, logs or ``repr``.
    """

    async def load(self, session_id: str) -> Session | None:
        """Return the stored session, or None when there is none.

        A stored session that cannot be read is never overwritten. The
        FileBackend moves the file aside and returns an empty session with
        ``quarantined_to`` set to where the old data went; shared backends raise
        StorageError naming the unreadable record and change nothing.
        """
        ...

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        """Durably add ``messages`` to the end of the session, all or none.

        Creates the session (with ``title`` and ``workspace_uri``) if it does not
        exist yet; an existing session keeps its own (the engine decides titles,
        through ``update``). Costs O(1) in the length of the history.
        """
        ...

    async def save_copy(self, session: Session, source_id: str) -> None:
        """``save(session)``, where ``session.messages`` are the first messages of the stored
        session ``source_id`` as the caller read them (a fork): a store may copy them inside
        itself rather than receive them again. The result is always what ``save`` would store:
        if the source no longer starts with those messages, they are written as given."""
        ...

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Durably replace the session's title and metadata record with ``change(summary)``.

        Atomic against every other writer: ``change`` sees the stored summary and its
        result is written only if nothing changed them meanwhile, so it may be called
        more than once and must have no side effects. Messages, times and the message
        count are untouched. Returns the new summary, or None (``change`` not called)
        when there is no such session.
        """
        ...

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        """Durably replace the whole stored session with ``session``.

        With ``expected_messages``, only if the store still holds the session with exactly
        that many messages: otherwise nothing is written and ``SessionChanged`` is raised, so
        a rewrite of what was loaded never drops a turn another process appended meanwhile
        (nor brings back a session deleted meanwhile).
        """
        ...

    async def delete(self, session_id: str) -> bool:
        """Remove the session; return False if there was none."""
        ...

    async def list(self) -> list[SessionInfo]:
        """Summaries of every stored session, most recently updated first,
        without reading whole histories."""
        ...

    async def load_memories(self, project: str) -> list[Message]:
        """The project's memories, oldest first (``project_memories.ordered``); [] for none.

        A memory is a fact sent with every ask of a project (``engine/project_memory.py``):
        kept as a Message whose ``content`` is the text, with its own ``id`` and ``timestamp``
        (when it was remembered), encoded as every message record is (``codec.encode_message``,
        so encrypted and compressed as the settings say). ``project`` follows the session id
        rules. Memories are not sessions: ``list``, ``load`` and search never see them.
        """
        ...

    async def memory_projects(self) -> list[str]:
        """The projects that hold memories (one that held some may be listed with none left),
        sorted: for copying and resealing a whole store."""
        ...

    async def add_memory(self, project: str, memory: Message) -> None:
        """Durably add ``memory`` to the project's memories, atomic against every other writer
        (two daemons remembering at once both keep theirs); the same id again replaces it."""
        ...

    async def delete_memory(self, project: str, memory_id: str) -> bool:
        """Durably remove the memory (its text leaves the store); False when the project has
        no memory with that id."""
        ...

    def watch(self) -> SessionWatch:
        """A watch on this store (nothing connects until its ``changes()`` is iterated): it
        reports the sessions it follows when any process appends to, updates or deletes them,
        with the store's own means (docs/storage.md, "Live sessions")."""
        ...

    async def claim_answer(self, session_id: str, holder: str, seconds: float) -> bool:
        """Take the session's answering lease for ``holder``, or renew it if ``holder`` holds it;
        False while another holder's is in force. Only one process answers in a session at a
        time. A lease ends when released, ``seconds`` after its last claim, or (files) when the
        process holding it ends, however it ends."""
        ...

    async def release_answer(self, session_id: str, holder: str) -> None:
        """End ``holder``'s answering lease on the session (nothing if it holds none)."""
        ...

    async def close(self) -> None:
        """Release connections and threads; the backend is not used afterwards."""
        ...
