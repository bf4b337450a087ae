"""Naming, tagging and pinning sessions: changes to a session's title and metadata only.

Each goes through the store's compare-and-set ``update``, so two windows tagging one
session at once both keep their tags. A title the user gives is marked in the metadata
(``userTitle``): automatic titles never replace it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from ..memory import SessionInfo, SessionNotFound, validate_session_id
from ..memory.backend import MetaChange
from ..memory.limits import MAX_TAG_LENGTH, MAX_TAGS, MAX_TITLE_LENGTH
from ..memory.models import SessionMeta
from .errors import InvalidArgument
from .sessions import Sessions


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def checked_title(title: str, field: str = "title") -> str:
    """A user's title: 1 to MAX_TITLE_LENGTH characters on one line, trimmed."""
    clean = title.strip()
    if not clean:
        raise InvalidArgument(field, "must not be empty")
    if len(clean) > MAX_TITLE_LENGTH:
        raise InvalidArgument(field, f"is {len(clean):,} characters long; the limit is {MAX_TITLE_LENGTH}")
    if _has_controls(clean):
        raise InvalidArgument(field, "must be one line without control characters")
    return clean


def checked_tag(tag: str, field: str = "tags") -> str:
    """A tag: 1 to MAX_TAG_LENGTH characters, no spaces, commas or control characters."""
    clean = tag.strip()
    if not clean:
        raise InvalidArgument(field, "holds an empty tag")
    if len(clean) > MAX_TAG_LENGTH:
        raise InvalidArgument(field, f"tag {clean[:20]!r}… is longer than {MAX_TAG_LENGTH} characters")
    if _has_controls(clean) or any(ch.isspace() or ch == "," for ch in clean):
        raise InvalidArgument(field, f"tag {clean!r} must not hold spaces, commas or control characters")
    return clean


def retagged(tags: list[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """``tags`` with ``add`` put on, then ``remove`` taken out, compared without regard to
    case; the first spelling of a tag is kept and order is preserved."""
    result = list(tags)
    held = {tag.casefold() for tag in result}
    for tag in add:
        if tag.casefold() not in held:
            result.append(tag)
            held.add(tag.casefold())
    gone = {tag.casefold() for tag in remove}
    return [tag for tag in result if tag.casefold() not in gone]


class Labels:
    """Rename, tag and pin stored sessions."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def _update(self, session_id: str, change: MetaChange) -> SessionInfo:
        validate_session_id(session_id)
        info = await self.sessions.store.sessions.update(session_id, change)
        if info is None:
            raise SessionNotFound(session_id)
        return info

    async def rename(self, session_id: str, title: str) -> SessionInfo:
        title = checked_title(title)

        def change(info: SessionInfo) -> tuple[str, SessionMeta]:
            meta = info.meta.copy()
            meta.user_title = True
            return title, meta

        return await self._update(session_id, change)

    async def tag(self, session_id: str, add: list[str], remove: list[str]) -> SessionInfo:
        add = [checked_tag(tag, "add") for tag in add]
        remove = [checked_tag(tag, "remove") for tag in remove]

        def change(info: SessionInfo) -> tuple[str, SessionMeta]:
            meta = info.meta.copy()
            meta.tags = retagged(meta.tags, add, remove)
            if len(meta.tags) > MAX_TAGS:
                raise InvalidArgument("add", f"a session holds at most {MAX_TAGS} tags")
            return info.title, meta

        return await self._update(session_id, change)

    async def pin(self, session_id: str, pinned: bool) -> SessionInfo:
        def change(info: SessionInfo) -> tuple[str, SessionMeta]:
            meta = info.meta.copy()
            meta.pinned = pinned
            return info.title, meta

        return await self._update(session_id, change)
