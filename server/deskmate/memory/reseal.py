"""Sealing every session of a store with the current key: ``deskmate sessions migrate
--encrypt`` (plain sessions written before encryption was on) and ``--rekey`` (sessions
sealed with an older key, after ``deskmate keys init --rotate``).

Each session that is not wholly sealed with the current key is loaded (opened with whichever
key sealed it), saved whole (atomic in every store: a kill leaves the old copy or the new,
never a mix), read back and compared by content hash. Running it again resumes: sessions
already sealed with the current key are skipped. Old keys must stay available until it
reports that nothing uses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from . import keys as key_source
from .codec import UnknownEncoding, observing
from .errors import SessionChanged, StorageError
from .migrate import content_hash
from .models import Session
from .sealed import SEALED_META_KEY, SealedLabels
from .sealing import sealed_key_id

RESEAL_ATTEMPTS = 20


@dataclass
class ResealReport:
    resealed: list[str] = field(default_factory=list)
    already_sealed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (session id, why)
    messages: int = 0
    memories: int = 0  # project memories verified sealed with the current key

    @property
    def ok(self) -> bool:
        return not self.refused


async def _sealed_with(store: SealedLabels, session_id: str) -> tuple[set[str | None], Session | None]:
    """The key ids sealing the session's records and labels as stored (None: something plain)."""
    with observing() as seen:
        raw = await store.inner.load(session_id)
    if raw is None:
        return set(), None
    kids: set[str | None] = {kid for _, kid in seen}
    if raw.messages and not seen:  # no record decoded: all plain (or from a cache): seal again
        kids.add(None)
    sealed_meta = raw.meta.extra.get(SEALED_META_KEY)
    kids.add(sealed_key_id(sealed_meta) if isinstance(sealed_meta, str) else None)
    if raw.title:
        kids.add(sealed_key_id(raw.title))
    return kids, raw


async def reseal(
    store: SealedLabels,
    *,
    progress: Callable[[str, str, int], None] = lambda outcome, session_id, messages: None,
) -> ResealReport:
    """Seal every session of ``store`` with the current key; ``progress(outcome, id, messages)``
    hears about each one (``resealed``, ``already sealed``, ``refused``)."""
    current = key_source.keys().current_id
    if current is None:
        raise key_source.KeysUnavailable("there is no key to seal with: run `deskmate keys init` first.")
    store.seal = True
    report = ResealReport()
    for info in reversed(await store.list()):  # oldest first
        for attempt in range(RESEAL_ATTEMPTS):
            try:
                outcome = await _reseal_one(store, info.id, current, report)
                break
            except SessionChanged:
                # A turn was stored (or the session deleted) between our read and our write:
                # nothing was written; read it again.
                await asyncio.sleep(0.05 * (attempt + 1))
        else:
            report.refused.append((info.id, "it kept changing while being sealed; run the migration again"))
            progress("refused", info.id, 0)
            continue
        if outcome is not None:
            progress(*outcome)
    for project in await store.memory_projects():
        await _reseal_memories(store, project, current, report)
    return report


async def _reseal_one(
    store: SealedLabels, session_id: str, current: str, report: ResealReport
) -> tuple[str, str, int] | None:
    """Seal one session again; what to tell ``progress`` (None: the session is gone)."""
    try:
        kids, raw = await _sealed_with(store, session_id)
        if raw is None:
            return None  # deleted since the listing
        if kids == {current}:
            report.already_sealed.append(session_id)
            report.messages += len(raw.messages)
            return ("already sealed", session_id, len(raw.messages))
        session = await store.load(session_id)
    except UnknownEncoding as exc:  # a key deskmate lacks, or a record it cannot read
        report.refused.append((session_id, str(exc)))
        return ("refused", session_id, 0)
    if session is None:
        return None
    wanted = content_hash(session)
    # Only over the very history that was read: an append landing meanwhile is never lost.
    await store.save(session, expected_messages=len(session.messages))
    kids, _ = await _sealed_with(store, session_id)
    copy = await store.load(session_id)
    if copy is None or kids != {current} or content_hash(_first(copy, len(session.messages))) != wanted:
        raise StorageError(
            f"Session {session_id!r} reads back different after sealing it again; stopped there "
            "(the session as read back is what the store holds)."
        )
    report.resealed.append(session_id)
    report.messages += len(session.messages)
    return ("resealed", session_id, len(session.messages))


def _first(session: Session, count: int) -> Session:
    """The session with only its first ``count`` messages (turns stored after the seal aside)."""
    copy = session.copy()
    copy.messages = copy.messages[:count]
    return copy


async def _reseal_memories(store: SealedLabels, project: str, current: str, report: ResealReport) -> None:
    """The project's memories sealed with the current key: each one not yet is added again
    under its id (which replaces it), then all are read back."""
    try:
        with observing() as seen:
            memories = await store.inner.load_memories(project)
    except UnknownEncoding as exc:
        report.refused.append((f"memories of project {project}", str(exc)))
        return
    kids = {kid for _, kid in seen}
    if memories and (not seen or kids != {current}):
        for memory in memories:
            await store.add_memory(project, memory)
        with observing() as seen:
            back = await store.inner.load_memories(project)
        if [m.to_dict() for m in back] != [m.to_dict() for m in memories] or {k for _, k in seen} != {
            current
        }:
            raise StorageError(
                f"The memories of project {project!r} read back different after sealing them again; "
                "stopped there."
            )
    report.memories += len(memories)
