"""SealedLabels: a MemoryBackend over another that keeps a session's title, workspace URI and
metadata record (tags, pins, ...) encrypted in the store below, when encryption is on.

Message records are encrypted by the record codec (``memory/sealing.py``) in every store;
what a store keeps beside them in columns, hash fields, headers and manifests of its own
passes through here. Sealed, a session's labels are:

- its title: ``sealed:v1:<key id>:<base64>``, cut so the sealed text fits a store's 200
  characters (a session created by an append has nothing else);
- its workspace URI: sealed the same way;
- its metadata record: no tags or pin in the clear, and one extra field, ``sealed``, holding
  the title (whole), workspace URI and metadata record as sealed JSON. Every store keeps
  metadata fields it does not know, so this needs nothing of them.
- except its trash state (``deletedAt``, ``purgingAt``: two times, no content), kept in the
  clear beside ``sealed``: a move to the trash is then a ``MetaPatch`` passed straight down,
  which a shared store's outbox can queue during an outage (engine/trash.py).

Reads open whatever is sealed, with encryption on or off; plain labels written before
encryption was turned on read as they are. A listing shows a session whose key is missing
as "(encrypted with key <id>)"; loading it fails with MissingKey, naming the key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace

from .backend import MemoryBackend, MetaChange
from .codec import UnknownEncoding, decode_meta, encode_meta
from .limits import MAX_TITLE_LENGTH, clip_title
from .models import Message, Session, SessionInfo, SessionMeta
from .passing import PassesThrough
from .patches import MetaPatch
from .sealing import is_sealed, open_text, seal_text, sealed_key_id

log = logging.getLogger(__name__)

SEALED_META_KEY = "sealed"
CLEAR_META_KEYS = frozenset({"deletedAt", "purgingAt"})  # the trash state: never sealed
_SEALED_TITLE_BYTES = (MAX_TITLE_LENGTH - 19) // 4 * 3 - 28  # prefix, key id, base64 of nonce+tag


def _short(title: str) -> str:
    """``title`` cut to what fits a sealed title of MAX_TITLE_LENGTH characters."""
    data = title.encode()
    if len(data) <= _SEALED_TITLE_BYTES:
        return title
    return data[: _SEALED_TITLE_BYTES - 3].decode(errors="ignore") + "…"


class SealedLabels(PassesThrough):
    """Wraps ``inner``: seals labels written while ``seal`` is true; opens sealed labels read."""

    def __init__(self, inner: MemoryBackend, *, seal: bool) -> None:
        self.inner = inner
        self.seal = seal
        # Appends pass the session's title and workspace each time (the store keeps them only
        # when it creates the session): sealed once per session and key, not once per turn (so
        # two sessions never share a ciphertext, and a session's own labels are sealed once).
        self._appended_labels: dict[tuple[str, str, str | None, str | None], tuple[str, str | None]] = {}

    def __repr__(self) -> str:
        return f"SealedLabels({self.inner!r}, seal={self.seal})"

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # e.g. ResilientBackend.unavailable

    # -- sealing and opening ----------------------------------------------------

    def _title(self, title: str) -> str:
        return seal_text(_short(clip_title(title)), "title") if self.seal and title else title

    def _workspace(self, uri: str | None) -> str | None:
        return seal_text(uri, "workspaceUri") if self.seal and uri is not None else uri

    def _meta(self, title: str, workspace_uri: str | None, meta: SessionMeta) -> SessionMeta:
        if not self.seal:
            return meta
        hidden = replace(meta, deleted_at=None, purging_at=None)
        blob = {"title": clip_title(title), "workspaceUri": workspace_uri, "meta": encode_meta(hidden)}
        return SessionMeta(
            deleted_at=meta.deleted_at,
            purging_at=meta.purging_at,
            extra={SEALED_META_KEY: seal_text(json.dumps(blob), "meta")},
        )

    @staticmethod
    def opened(
        title: str, workspace_uri: str | None, meta: SessionMeta
    ) -> tuple[str, str | None, SessionMeta]:
        """The labels as written; MissingKey or UnreadableRecord when sealed ones do not open."""
        sealed = meta.extra.get(SEALED_META_KEY)
        if is_sealed(sealed):
            try:
                blob = json.loads(open_text(sealed, "meta"))
                opened = decode_meta(blob["meta"])
                opened.deleted_at, opened.purging_at = meta.deleted_at, meta.purging_at  # in the clear
                return blob["title"], blob["workspaceUri"], opened
            except (ValueError, KeyError, TypeError) as exc:
                from .codec import UnreadableRecord

                raise UnreadableRecord(
                    f"the session's sealed labels are not what deskmate writes ({exc})"
                ) from None
        title = open_text(title, "title")
        workspace_uri = open_text(workspace_uri, "workspaceUri") if workspace_uri is not None else None
        return title, workspace_uri, meta

    def _open_info(self, info: SessionInfo) -> SessionInfo:
        title, workspace_uri, meta = self.opened(info.title, info.workspace_uri, info.meta)
        return replace(info, title=title, workspace_uri=workspace_uri, meta=meta)

    @staticmethod
    def _locked_info(info: SessionInfo, exc: UnknownEncoding) -> SessionInfo:
        """A listing entry for a session whose labels do not open: listed, never hidden."""
        kid = getattr(exc, "key_id", None) or sealed_key_id(info.title) or "?"
        return replace(info, title=f"(encrypted with key {kid})", workspace_uri=None, meta=SessionMeta())

    # -- MemoryBackend ----------------------------------------------------------

    async def load(self, session_id: str) -> Session | None:
        session = await self.inner.load(session_id)
        if session is None:
            return None
        session.title, session.workspace_uri, session.meta = self.opened(
            session.title, session.workspace_uri, session.meta
        )
        return session

    async def append(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        title: str = "",
        workspace_uri: str | None = None,
    ) -> None:
        if self.seal:
            from . import keys

            cache_key = (session_id, title, workspace_uri, keys.keys().current_id)
            sealed = self._appended_labels.get(cache_key)
            if sealed is None:
                if len(self._appended_labels) >= 256:
                    self._appended_labels.clear()
                sealed = self._appended_labels[cache_key] = (
                    self._title(title),
                    self._workspace(workspace_uri),
                )
            title, workspace_uri = sealed
        await self.inner.append(session_id, messages, title=title, workspace_uri=workspace_uri)

    def _sealed_session(self, session: Session) -> Session:
        sealed = session.copy()
        sealed.title = self._title(session.title)
        sealed.workspace_uri = self._workspace(session.workspace_uri)
        sealed.meta = self._meta(session.title, session.workspace_uri, session.meta)
        return sealed

    async def save(self, session: Session, *, expected_messages: int | None = None) -> None:
        await self.inner.save(self._sealed_session(session), expected_messages=expected_messages)

    async def save_copy(self, session: Session, source_id: str) -> None:
        # Labels sealed as by save; the messages are copied as stored (sealed as the source's are).
        await self.inner.save_copy(self._sealed_session(session), source_id)

    async def update(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        if isinstance(change, MetaPatch) and set(change.values) <= CLEAR_META_KEYS:
            # Only the trash state, kept in the clear: the patch goes down as it is (queueable).
            patched = await self.inner.update(session_id, change)
            return None if patched is None else self._open_info(patched)

        def sealed_change(stored: SessionInfo) -> tuple[str, SessionMeta]:
            info = self._open_info(stored)
            title, meta = change(info)
            return self._title(title), self._meta(title, info.workspace_uri, meta)

        updated = await self.inner.update(session_id, sealed_change)
        return None if updated is None else self._open_info(updated)

    async def delete(self, session_id: str) -> bool:
        return await self.inner.delete(session_id)

    async def list(self) -> list[SessionInfo]:
        infos = []
        for info in await self.inner.list():
            try:
                infos.append(self._open_info(info))
            except UnknownEncoding as exc:
                log.warning("Session %s is listed without its title: %s", info.id, exc)
                infos.append(self._locked_info(info, exc))
        return infos

    async def close(self) -> None:
        await self.inner.close()
