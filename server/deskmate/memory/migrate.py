"""Copying every session from one backend to another, verified and resumable.

Each session is copied whole with ``save`` (atomic in every backend), then read
back from the target and compared by message count and a content hash. A run
that stops part way is resumed by running it again: sessions already in the
target with the same hash are skipped. A target session holding messages the
source lacks is never overwritten: that would lose them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from .backend import MemoryBackend
from .codec import encode_meta, storable
from .errors import StorageError
from .models import Session


def content_hash(session: Session) -> str:
    """A hash of everything a session holds, the same in every backend."""
    canonical = {
        "title": session.title,
        "workspaceUri": session.workspace_uri,
        "createdAt": session.created_at,
        "meta": encode_meta(session.meta),
        "messages": [m.to_dict() for m in session.messages],
    }
    encoded = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    # As every store keeps text (lone surrogates become U+FFFD), so a copy hashes as its original.
    return hashlib.sha256(storable(encoded).encode()).hexdigest()


@dataclass
class MigrationReport:
    copied: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (session id, why)
    messages: int = 0  # messages verified in the target, copied or already there
    memories: int = 0  # project memories verified in the target, copied or already there

    @property
    def ok(self) -> bool:
        return not self.conflicts


async def migrate(
    source: MemoryBackend,
    target: MemoryBackend,
    *,
    progress: Callable[[str, str, Session], None] = lambda outcome, session_id, session: None,
) -> MigrationReport:
    """Copy every session of ``source`` into ``target``.

    ``progress(outcome, session_id, session)`` hears about each session as it is
    done, outcome being ``copied``, ``already there`` or ``conflict``. Raises
    StorageError when a copy reads back different from what was written.
    """
    report = MigrationReport()
    await target.list()  # reach the target before reading anything: a wrong URL fails at once
    infos = await source.list()
    for info in reversed(infos):  # oldest first: an interrupted run has moved the settled ones
        session = await source.load(info.id)
        if session is None:  # deleted since the listing
            continue
        wanted = content_hash(session)
        existing = await target.load(info.id)
        if existing is not None and content_hash(existing) == wanted:
            report.already_there.append(info.id)
            report.messages += len(session.messages)
            progress("already there", info.id, session)
            continue
        if existing is not None and (why := _would_lose(existing, session)):
            report.conflicts.append((info.id, why))
            progress("conflict", info.id, session)
            continue
        await target.save(session)
        _verify(await target.load(info.id), session, wanted)
        report.copied.append(info.id)
        report.messages += len(session.messages)
        progress("copied", info.id, session)
    await _copy_memories(source, target, report)
    return report


async def _copy_memories(source: MemoryBackend, target: MemoryBackend, report: MigrationReport) -> None:
    """Every project's memories, those the target lacks added (by id), then all read back.
    A memory the target holds under the same id with other text is a conflict, left as it is."""
    for project in await source.memory_projects():
        held = {m.id: m.to_dict() for m in await target.load_memories(project)}
        wanted = await source.load_memories(project)
        clashing = [m.id for m in wanted if m.id in held and held[m.id] != m.to_dict()]
        for memory in wanted:
            if memory.id not in held:
                await target.add_memory(project, memory)
        back = {m.id: m.to_dict() for m in await target.load_memories(project)}
        for memory in wanted:
            if memory.id in clashing:
                report.conflicts.append(
                    (f"memory {memory.id} of project {project}", "the target holds other text under its id")
                )
            elif back.get(memory.id) != memory.to_dict():
                raise StorageError(
                    f"Memory {memory.id!r} of project {project!r} reads back different from the target."
                )
            else:
                report.memories += 1


def _would_lose(existing: Session, incoming: Session) -> str | None:
    """Why replacing ``existing`` with ``incoming`` would lose messages, if it would."""
    incoming_ids = {m.id for m in incoming.messages}
    only_in_target = [m for m in existing.messages if m.id not in incoming_ids]
    if not only_in_target:
        return None  # an older or partial copy: replacing it loses nothing
    return (
        f"the target holds {len(only_in_target)} message(s) the source lacks "
        "(delete the session in the target, or copy the other way, to resolve)"
    )


def _verify(copy: Session | None, original: Session, wanted: str) -> None:
    if copy is None:
        raise StorageError(f"Session {original.id!r} was written to the target but cannot be read back.")
    if len(copy.messages) != len(original.messages) or content_hash(copy) != wanted:
        raise StorageError(
            f"Session {original.id!r} reads back from the target with {len(copy.messages)} messages "
            f"and a different hash (written: {len(original.messages)} messages); it was not counted as copied."
        )
