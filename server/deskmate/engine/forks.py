"""Forks: a new session that starts as a copy of another's history up to one message.

A fork copies its history (one ``save_copy`` of the prefix: a save, which a store may do by
copying the source's records inside itself) rather than sharing it with
its source: every store can do that with the primitives it has, a fork loads exactly
as fast as any session of its length, and deleting or damaging the source never
reaches its forks. Messages keep their ids, so a fork and its source can be
compared turn by turn. The lineage is the fork's ``forkedFrom`` metadata
(``{sessionId, messageId}``); a session's forks are found from a listing. The source's
metadata records when it was last forked (``lastForkAt``): that change is what tells other
windows showing the source (live sessions) that it has a new fork.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ..memory import Message, Session, SessionInfo, SessionNotFound, StorageError
from ..memory.limits import clip_title
from ..memory.models import SessionMeta, now_iso
from ..memory.patches import fork_made
from .errors import EngineError
from .live import LiveSessions
from .sessions import SessionRef, Sessions
from .workspaces import fresh_session_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lineage:
    """Where a fork came from: its source session and the message it was made at."""

    session_id: str
    message_id: str

    def to_record(self) -> dict[str, str]:
        return {"sessionId": self.session_id, "messageId": self.message_id}

    @classmethod
    def of(cls, meta: SessionMeta) -> Lineage | None:
        """The lineage a session's metadata records; None for a session that is no fork
        (or whose record holds something else there)."""
        record = meta.forked_from
        if not record:
            return None
        session_id, message_id = record.get("sessionId"), record.get("messageId")
        if isinstance(session_id, str) and isinstance(message_id, str):
            return cls(session_id, message_id)
        return None


@dataclass(frozen=True)
class ForkInfo:
    """One fork of a session, as ``getSession`` lists it."""

    session_id: str
    message_id: str
    title: str


@dataclass(frozen=True)
class Edit:
    """An ask that continues in a fork: the fork, where it came from, and what to ask there."""

    fork: Session
    ref: SessionRef
    lineage: Lineage
    question: str
    context: dict | None


FORK_SUFFIX = " (fork)"


def fork_title(source: Session) -> str:
    """ "<title> (fork)"; a fork of a fork keeps its one suffix."""
    title = source.title or source.id
    return clip_title(title if title.endswith(FORK_SUFFIX) else title + FORK_SUFFIX)


def _carried(meta: SessionMeta, messages: list[Message]) -> dict[str, Any]:
    """What of the source's compaction a fork of its first ``messages`` keeps: the pins on
    those messages, and the summaries of a range within them (a summary always starts at the
    first message), so the fork's next ask is as short as the source's was there."""
    ids = {message.id for message in messages}
    return {
        "pinned_messages": [message_id for message_id in meta.pinned_messages if message_id in ids],
        "summaries": [
            dict(summary)
            for summary in meta.summaries
            if summary.get("from") in ids and summary.get("to") in ids
        ],
    }


class Forks:
    """Forking sessions of the engine's store; a fork becomes its folder's active session."""

    def __init__(self, sessions: Sessions, live: LiveSessions | None = None) -> None:
        self.sessions = sessions
        self.live = live or LiveSessions(sessions.store)
        self._marking: set[asyncio.Task[None]] = set()  # sources being told of a fork (_mark_source)

    async def _source(self, ref: SessionRef) -> Session:
        if ref.id is None:
            raise EngineError(
                "This conversation is not stored (no workspace folder is open), so it cannot be forked; "
                "open a folder or give a sessionId."
            )
        session = await self.sessions.stored(ref.id)
        if session is None or session.quarantined_to:
            raise SessionNotFound(ref.id)
        return session

    @staticmethod
    def _position(source: Session, message_id: str) -> int:
        for index, message in enumerate(source.messages):
            if message.id == message_id:
                return index
        raise EngineError(f'Session "{source.id}" has no message "{message_id}".')

    async def _create(
        self, ref: SessionRef, source: Session, messages: list[Message], lineage: Lineage, title: str | None
    ) -> Session:
        folder = ref.workspace_uri
        project = source.meta.project
        if project is None and (identity := await self.sessions.project_of(folder)) is not None:
            project = identity.id
        fork = Session(
            id=await self._unused_id(folder or source.workspace_uri),
            title=clip_title(title) if title else fork_title(source),
            workspace_uri=source.workspace_uri or folder,
            meta=SessionMeta(
                tags=list(source.meta.tags),
                forked_from=lineage.to_record(),
                project=project,
                **_carried(source.meta, messages),
            ),
            messages=messages,
        )
        # The store may copy the prefix from the source inside itself (PostgreSQL does).
        await self.sessions.store.sessions.save_copy(fork, source.id)
        await self._make_active(folder, fork.id)
        # Off the fork's path, once the fork is done: on the file store the mark rewrites the
        # source's header line, whose sync would hold up the fork's own writes.
        marking = asyncio.ensure_future(self._mark_source(source.id))
        self._marking.add(marking)
        marking.add_done_callback(self._marking.discard)
        return fork

    async def close(self) -> None:
        """Wait for the marks of forks made (a CLI fork exits right after it)."""
        await asyncio.gather(*self._marking, return_exceptions=True)

    async def _mark_source(self, source_id: str) -> None:
        """Record the fork on its source (``lastForkAt``, one compare-and-set update of its
        metadata), so every daemon showing the source hears of it (its forks changed). Not
        reported back to this process's client, which made the fork; never fails the fork, which
        is stored: other windows then only see it on their next load."""
        store = self.sessions.store
        if store.overlay is not None:
            return  # autoSave off: the fork is in this process's memory, nothing to tell others
        try:
            async with self.live.quiet(source_id):
                await store.backend.update(source_id, fork_made(now_iso()))
        except Exception as exc:  # it runs on its own (fork): never an unretrieved task error
            log.warning("Could not record the fork on its source %s: %s", source_id, exc)

    async def _unused_id(self, folder: str | None) -> str:
        """A fresh id no stored session has: a save under a taken one would replace that history."""
        while True:
            session_id = fresh_session_id(folder)
            if await self.sessions.store.sessions.load(session_id) is None:
                return session_id

    async def _make_active(self, folder: str | None, session_id: str) -> None:
        """The fork becomes the folder's active session, unless the sessionId setting pins every
        folder to one session (the fork is then made, and reached by its id)."""
        if folder is not None and not self.sessions.pinned_session():
            await asyncio.to_thread(self.sessions.workspaces.set_active, folder, session_id)

    async def fork(
        self, ref: SessionRef, message_id: str, title: str | None = None
    ) -> tuple[Session, Lineage]:
        """A new session holding ``ref``'s history up to and including ``message_id``."""
        source = await self._source(ref)
        end = self._position(source, message_id) + 1
        lineage = Lineage(source.id, message_id)
        return await self._create(ref, source, source.messages[:end], lineage, title), lineage

    async def edit(
        self, ref: SessionRef, message_id: str, question: str | None, context: dict | None
    ) -> Edit:
        """A fork to ask in instead of the question ``message_id``: it holds what came before
        that question. ``question`` None re-asks it unchanged (regenerate), and then
        ``message_id`` may also name an answer, whose question is re-asked. The question's
        context is kept unless a new one is given."""
        source = await self._source(ref)
        index = self._position(source, message_id)
        if source.messages[index].role != "user":
            if question is not None:
                raise EngineError(
                    f'Message "{message_id}" of session "{source.id}" is not a question; only questions '
                    "can be edited."
                )
            index = _question_before(source, index)
        original = source.messages[index]
        lineage = Lineage(source.id, original.id)
        fork = await self._create(ref, source, source.messages[:index], lineage, None)
        return Edit(
            fork,
            SessionRef(fork.id, ref.workspace_uri),
            lineage,
            question if question is not None else original.content,
            context or original.context,
        )

    async def of(self, session_id: str) -> list[ForkInfo]:
        """The forks made from ``session_id``, oldest first; found from a listing (no history read)."""
        try:
            infos = await self.sessions.store.sessions.list()
        except StorageError as exc:  # the history is still worth showing without them
            log.warning("Could not list the forks of %s: %s", session_id, exc)
            return []
        return [
            ForkInfo(info.id, lineage.message_id, info.title)
            for info in sorted(infos, key=lambda info: info.created_at)
            if (lineage := Lineage.of(info.meta)) is not None and lineage.session_id == session_id
        ]


def lineage_of(info: Session | SessionInfo) -> Lineage | None:
    return Lineage.of(info.meta)


def _question_before(source: Session, index: int) -> int:
    for earlier in range(index - 1, -1, -1):
        if source.messages[earlier].role == "user":
            return earlier
    raise EngineError(
        f'Message "{source.messages[index].id}" of session "{source.id}" has no question before it to ask again.'
    )
