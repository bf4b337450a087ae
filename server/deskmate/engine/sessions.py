"""Sessions: which one a request means, and listing, opening, starting, switching, deleting them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..memory import (
    MemoryBackend,
    Message,
    Session,
    SessionIdRequired,
    SessionInfo,
    SessionNotFound,
    SessionStoreError,
    validate_session_id,
)
from ..memory.backend import MetaChange
from ..memory.limits import clip_title
from ..memory.models import SessionMeta
from ..memory.search_index import ListQuery
from .adoption import inherited_session, stamp_project, unstamped_in
from .errors import EngineError
from .export import session_to_markdown
from .projects import ProjectIdentity, identify
from .settings import Settings
from .store import SessionStore
from .trash import in_trash, restore_change, trash_patch
from .workspaces import GLOBAL_SESSION_ID, Workspaces, folder_key, fresh_session_id

log = logging.getLogger(__name__)

ADOPT_RETRY = 30.0  # seconds before a folder's adoption the store refused is tried again


def refuse_trashed(info: SessionInfo) -> None:
    """Nothing is asked in, or switched to, a session in the trash: it would come back unseen."""
    if in_trash(info):
        raise EngineError(
            f'Session "{info.id}" is in the trash. Restore it first (deskmate.restoreSession, '
            "or Restore in the editor's trash), or start a new session."
        )


def first_title(title: str) -> MetaChange:
    """The title rule: a session with no messages and no title yet (e.g. one just made by
    newSession) takes its first question's; any other keeps its own."""

    def change(info: SessionInfo) -> tuple[str, SessionMeta]:
        return (info.title or title if info.message_count == 0 else info.title), info.meta

    return change


@dataclass
class SessionRef:
    """Which session a request is about. ``id`` None: the unsaved in-memory conversation."""

    id: str | None
    workspace_uri: str | None = None  # the workspace folder it belongs to


@dataclass
class SessionView:
    session: Session
    active: bool
    persisted: bool


class Sessions:
    """The sessions of the open workspace folders, in the engine's store.

    ``settings`` returns the settings in force; ``warn`` receives user-facing warnings.
    """

    def __init__(
        self, settings: Callable[[], Settings], store: SessionStore, warn: Callable[[str], None]
    ) -> None:
        self._settings = settings
        self.store = store
        self.warn = warn
        self.workspaces = Workspaces(store.data_dir)
        self._projects: dict[str, ProjectIdentity] = {}  # each folder's project, once identified
        self._opening: dict[str, asyncio.Future[ProjectIdentity]] = {}
        # Folders identified but not adopted yet (the store refused): when to try again.
        self._unadopted: dict[str, float] = {}

    def moved(self) -> None:
        """The data dir or the store changed: folders' active sessions are read from the new
        data dir, and each folder's sessions adopted afresh from the new store."""
        if self.workspaces.data_dir != self.store.data_dir:
            folders = self.workspaces.folders
            self.workspaces = Workspaces(self.store.data_dir)
            self.workspaces.set_folders(folders)
        self._unadopted.update(dict.fromkeys(self._projects, 0.0))

    # -- projects -----------------------------------------------------------------

    async def ready(self) -> None:
        """Every open folder's project is identified and its sessions adopted (the first time a
        folder is used; engine/adoption.py). Never raises: an adoption the store refused (it is
        down) is tried again on the next call."""
        folders = [f for f in self.workspaces.folders if f not in self._projects or self._retry_due(f)]
        if folders:
            await asyncio.gather(*(self.project_of(folder) for folder in folders))
        # A folder's project is known before its sessions are adopted: wait for those under way
        # too (the daemon starts them as it starts; a listing must not see the folder half done).
        opening = [self._opening[f] for f in self.workspaces.folders if f in self._opening]
        if opening:
            await asyncio.gather(*(asyncio.shield(future) for future in opening))

    async def project_of(self, workspace_uri: str | None) -> ProjectIdentity | None:
        """The project of the folder ``workspace_uri`` names (None: no folder)."""
        if not workspace_uri:
            return None
        folder = self.workspaces.folder_of(workspace_uri) or folder_key(workspace_uri)
        known = self._projects.get(folder)
        if known is not None and not self._retry_due(folder):
            return known
        opening = self._opening.get(folder)
        if opening is None:
            opening = self._opening[folder] = asyncio.ensure_future(self._open(folder, known))
            opening.add_done_callback(lambda _: self._opening.pop(folder, None))
        return await asyncio.shield(opening)

    async def _open(self, folder: str, known: ProjectIdentity | None) -> ProjectIdentity:
        identity = known or await asyncio.to_thread(identify, folder)
        if known is None and identity.problem:
            self.warn(f"deskmate: {identity.problem}.")
        self._projects[folder] = identity
        try:
            await self._adopt(folder, identity)
        except (SessionStoreError, OSError) as exc:
            log.warning("Could not bring the sessions of %s into its project yet: %s", folder, exc)
            self._unadopted[folder] = time.monotonic() + ADOPT_RETRY
        except Exception:  # a fault of ours must not stop every command: logged, tried again later
            log.error("Bringing the sessions of %s into its project failed", folder, exc_info=True)
            self._unadopted[folder] = time.monotonic() + ADOPT_RETRY
        else:
            self._unadopted.pop(folder, None)
        return identity

    def _retry_due(self, folder: str) -> bool:
        due = self._unadopted.get(folder)
        return due is not None and time.monotonic() >= due

    async def _adopt(self, folder: str, identity: ProjectIdentity) -> None:
        infos = await self._infos_of([folder], identity.keys)
        for session_id in unstamped_in(infos, folder):
            await self.change(session_id, stamp_project(identity.id))
        if self._settings().session_id:
            return  # every folder is pinned to one session: no folder's active session to carry over
        chosen = await asyncio.to_thread(self.workspaces.chosen)
        heir = await asyncio.to_thread(inherited_session, infos, folder, identity.keys, chosen)
        if heir is not None:
            session_id, vanished = heir
            log.info(
                "%s goes on with session %s of %s (gone), its project %s",
                folder,
                session_id,
                vanished,
                identity.id,
            )
            await asyncio.to_thread(self.workspaces.set_active, folder, session_id)

    async def _infos_of(self, folders: list[str], projects: tuple[str, ...]) -> list[SessionInfo]:
        """The stored sessions made in ``folders`` or belonging to ``projects`` (not in the trash,
        where the store pages by itself)."""
        backend = self.store.backend
        # A store that pages by itself (PostgreSQL) is asked; the local index is not consulted
        # here: it may still be catching up, and the listing below reads what it would.
        pager = getattr(backend, "list_page", None) if self.store.overlay is None else None
        if getattr(backend, "server_side", True) is None or self._settings().encryption == "on":
            pager = None  # sealed labels: only the listing below opens them
        if pager is not None:
            found: list[SessionInfo] = []
            while True:
                page = await pager(ListQuery(folders, (), None, None, projects=projects), len(found), 500)
                if page is None:
                    break  # the index has not caught up: the whole listing below
                found.extend(page)
                if len(page) < 500:
                    return found
        wanted = set(projects)
        return [
            info
            for info in await self.store.sessions.list()
            if (info.workspace_uri and folder_key(info.workspace_uri) in folders)
            or info.meta.project in wanted
        ]

    async def keys_of(self, folders: set[str] | list[str]) -> set[str]:
        """Every project key of ``folders``' projects: their sessions are listed with them."""
        keys: set[str] = set()
        for folder in folders:
            identity = await self.project_of(folder)
            if identity is not None:
                keys.update(identity.keys)
        return keys

    # -- resolving ------------------------------------------------------------

    def resolve(
        self, session_id: str | None = None, workspace_uri: str | None = None, context_uri: str | None = None
    ) -> SessionRef:
        """Pick the session a request means (see docs/protocol.md, "Sessions")."""
        workspaces = self.workspaces
        folder = None
        if workspace_uri:
            folder = workspaces.folder_of(workspace_uri) or folder_key(workspace_uri)
        elif context_uri:
            folder = workspaces.folder_of(context_uri)
            if folder is None and not session_id:
                return SessionRef(GLOBAL_SESSION_ID)
        elif workspaces.folders:
            folder = workspaces.folders[0]
        if session_id:
            return SessionRef(validate_session_id(session_id), folder)
        if folder is None:
            return SessionRef(None)
        return SessionRef(self._settings().session_id or workspaces.active_session(folder), folder)

    def pinned_session(self) -> str | None:
        """The session the sessionId setting pins every folder to, if it is set."""
        return self._settings().session_id

    def active_ids(self) -> set[str]:
        pinned = self._settings().session_id
        if pinned:
            return {pinned}
        return {self.workspaces.active_session(folder) for folder in self.workspaces.folders}

    # -- reading ----------------------------------------------------------------

    async def stored(self, session_id: str | None) -> Session | None:
        """The session as its store holds it; a damaged one was moved aside, and the user is told."""
        store, key = self.store.for_session(session_id)
        session = await store.load(key)
        if session is not None and session.quarantined_to:
            self.warn(
                f'deskmate: the history of session "{session_id}" was damaged; it was moved to '
                f"{session.quarantined_to} and a new history starts."
            )
        return session

    async def current(self, ref: SessionRef) -> tuple[Session, bool]:
        """The session's history now, and whether it is stored (not only in memory)."""
        session = await self.stored(ref.id)
        persisted = session is not None and not session.quarantined_to and not self.store.unsaved(ref.id)
        if session is None or session.quarantined_to:
            session = Session(id=ref.id or "", workspace_uri=ref.workspace_uri)
        return session, persisted

    async def list(
        self,
        workspace_uri: str | None = None,
        all: bool = False,
        placeholders: bool = True,
        *,
        tag: str | None = None,
        pinned: bool | None = None,
        trash: bool = False,
    ) -> list[tuple[SessionInfo, bool]]:
        """Sessions with an ``active`` flag, pinned ones first, then most recent first; by default
        only this workspace's; ``tag`` and ``pinned`` keep only sessions with that tag (any case)
        or pin state. ``placeholders``: a folder's active session is listed before it is stored
        (an editor's chat shows it); the terminal lists only what is stored. Sessions in the
        trash are left out, or (``trash``) are the only ones listed."""
        await self.ready()
        infos = {info.id: info for info in await self.store.sessions.list() if in_trash(info) == trash}
        if trash:
            folders = self._folders_of(workspace_uri)
            projects = await self.keys_of(folders)
            chosen = [info for info in infos.values() if all or _belongs(info, folders, projects)]
            chosen.sort(key=lambda info: info.meta.deleted_at or "", reverse=True)
            for info in chosen:
                info.title = clip_title(info.title)
            return [(info, False) for info in chosen]
        active = self.active_ids()
        if workspace_uri:
            ref = self.resolve(workspace_uri=workspace_uri)
            folders = {ref.workspace_uri} if ref.workspace_uri else set()
            if ref.id:
                active = {ref.id}
        else:
            folders = set(self.workspaces.folders)
        fixed_id = self._settings().session_id
        for folder in folders if placeholders else ():  # listed even before its first question
            session_id = fixed_id or self.workspaces.active_session(folder)
            infos.setdefault(session_id, SessionInfo(id=session_id, workspace_uri=folder))
        projects = await self.keys_of(folders)
        chosen = [
            info for info in infos.values() if all or info.id in active or _belongs(info, folders, projects)
        ]
        if tag is not None:
            wanted = tag.casefold()
            chosen = [info for info in chosen if any(t.casefold() == wanted for t in info.meta.tags)]
        if pinned is not None:
            chosen = [info for info in chosen if info.meta.pinned == pinned]
        chosen.sort(key=lambda info: info.updated_at, reverse=True)
        chosen.sort(key=lambda info: not info.meta.pinned)  # stable: pinned first, each most recent first
        for info in chosen:  # whatever a store holds, a listing stays small
            info.title = clip_title(info.title)
        return [(info, info.id in active) for info in chosen]

    async def page(
        self,
        workspace_uri: str | None = None,
        all: bool = False,
        *,
        tag: str | None = None,
        pinned: bool | None = None,
        start: int = 0,
        limit: int = 50,
    ) -> tuple[list[tuple[SessionInfo, bool]], bool]:
        """One page of ``list``'s sessions, in its order, and whether more follow. Read from the
        store's own pages (PostgreSQL, or the search index of the other stores) without reading
        every session when it can; else from the whole listing."""
        await self.ready()
        store = self.store
        pager = getattr(store.backend, "list_page", None) if store.overlay is None else None
        if pager is not None:
            active = self.active_ids()
            folders: list[str] | None = None
            if not all:
                if workspace_uri:
                    ref = self.resolve(workspace_uri=workspace_uri)
                    folders = [ref.workspace_uri] if ref.workspace_uri else []
                    active = {ref.id} if ref.id else set()
                else:
                    folders = list(self.workspaces.folders)
            projects = sorted(await self.keys_of(folders or []))
            query = ListQuery(folders, sorted(active), tag, pinned, projects=projects)
            infos = await pager(query, start, limit + 1)
            if infos is not None:
                more = len(infos) > limit
                infos = [info for info in infos[:limit] if not in_trash(info)]  # pages skip it already
                if start == 0 and not all and tag is None and pinned is not True:
                    infos = await self._with_unstored_active(pager, infos, folders or [])
                for info in infos:
                    info.title = clip_title(info.title)
                return [(info, info.id in active) for info in infos], more
        listed = await self.list(workspace_uri, all, tag=tag, pinned=pinned)
        return listed[start : start + limit], start + limit < len(listed)

    async def _with_unstored_active(
        self, pager, infos: list[SessionInfo], folders: list[str]
    ) -> list[SessionInfo]:
        """The first page with each folder's active session that is not stored yet, as ``list``
        shows it (it sorts as new: after the pinned ones, before the rest)."""
        fixed_id = self._settings().session_id
        wanted = {fixed_id or self.workspaces.active_session(folder): folder for folder in folders}
        missing = {session_id for session_id in wanted if all(info.id != session_id for info in infos)}
        if not missing:
            return infos
        stored = await pager(ListQuery(None, (), None, None, only_ids=sorted(missing)), 0, len(missing))
        missing -= {info.id for info in stored}
        placeholders = [
            SessionInfo(id=session_id, workspace_uri=wanted[session_id]) for session_id in sorted(missing)
        ]
        pinned = [info for info in infos if info.meta.pinned]
        return pinned + placeholders + [info for info in infos if not info.meta.pinned]

    def _folders_of(self, workspace_uri: str | None) -> set[str]:
        """The folder of ``workspace_uri`` (else: every open folder)."""
        if workspace_uri:
            ref = self.resolve(workspace_uri=workspace_uri)
            return {ref.workspace_uri} if ref.workspace_uri else set()
        return set(self.workspaces.folders)

    async def get(self, ref: SessionRef) -> SessionView:
        session, persisted = await self.current(ref)
        return SessionView(session, ref.id is not None and ref.id in self.active_ids(), persisted)

    async def export(self, ref: SessionRef) -> tuple[Session, str]:
        session, _ = await self.current(ref)
        return session, session_to_markdown(session)

    # -- changing -----------------------------------------------------------------

    async def add_question(
        self,
        store: MemoryBackend,
        key: str,
        question: Message,
        title: str,
        workspace_uri: str | None,
        *,
        untitled: bool,
        project: str | None = None,
    ) -> None:
        """Store a question; a new session is created with ``title``, and one that exists but is
        still empty and ``untitled`` takes it first. ``project``: the session joins that project
        (a new one, or one made before projects were known)."""
        if untitled:
            try:
                await store.update(key, first_title(title))
            except SessionStoreError as exc:  # the question matters more than its title
                log.warning("Could not title session %r: %s", key, exc)
        await store.append(key, [question], title=title, workspace_uri=workspace_uri)
        if project is not None:
            try:
                await store.update(key, stamp_project(project))
            except SessionStoreError as exc:  # adopted on the folder's next first use instead
                log.warning("Could not put session %r in project %s: %s", key, project, exc)

    def _check_folder_may_change_session(self, ref: SessionRef, action: str) -> None:
        if ref.workspace_uri is None:
            raise EngineError(f"There is no workspace folder to {action} in; open a folder first.")
        pinned = self._settings().session_id
        if pinned:
            raise EngineError(
                f'The deskmate.sessionId setting pins every folder to session "{pinned}"; clear it to {action}.'
            )

    async def new(self, workspace_uri: str | None = None, title: str = "") -> Session:
        """Start an empty session and make it the folder's active one."""
        ref = self.resolve(workspace_uri=workspace_uri)
        self._check_folder_may_change_session(ref, "start a new session")
        project = await self.project_of(ref.workspace_uri)
        session = Session(
            id=fresh_session_id(ref.workspace_uri),
            title=title,
            workspace_uri=ref.workspace_uri,
            meta=SessionMeta(project=project.id if project else None),
        )
        await self.store.sessions.save(session)
        await asyncio.to_thread(self.workspaces.set_active, ref.workspace_uri, session.id)
        return session

    async def switch(self, session_id: str, workspace_uri: str | None = None) -> Session:
        """Make an existing session the folder's active one."""
        ref = self.resolve(session_id=session_id, workspace_uri=workspace_uri)
        self._check_folder_may_change_session(ref, "switch sessions")
        session = await self.stored(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        refuse_trashed(session.info())
        await asyncio.to_thread(self.workspaces.set_active, ref.workspace_uri, session_id)
        return session

    async def delete(self, session_id: str) -> bool:
        """Delete a session everywhere; folders using it go back to their default session.

        Callers stop the session's running ask first (``Assistant.delete_session``).
        """
        validate_session_id(session_id, "deleteSession")
        deleted = await self.store.sessions.delete(session_id)
        await asyncio.to_thread(self.workspaces.forget_session, session_id)
        return deleted

    async def change(self, session_id: str, change: MetaChange) -> SessionInfo | None:
        """Change a session's title and metadata where it is stored (with autoSave off too: a
        delete or restore is not a turn to save later); None when there is no such session."""
        info = await self.store.backend.update(session_id, change)
        overlay = self.store.overlay
        if overlay is not None and overlay.holds(session_id):
            if info is None:  # only in memory, never saved: it changes there
                return await overlay.update(session_id, change)
            overlay.follow(info)
        return info

    async def move_to_trash(self, session_id: str, now: datetime) -> SessionInfo | None:
        """Put a session in the trash (None: there is none); folders using it move on."""
        validate_session_id(session_id, "deleteSession")
        info = await self.change(session_id, trash_patch(now))
        if info is not None:
            await asyncio.to_thread(self.leave, session_id)
        return info

    async def restore(self, session_id: str, now: datetime) -> SessionInfo:
        """Take a session out of the trash, whole."""
        validate_session_id(session_id, "restoreSession")
        info = await self.change(session_id, restore_change(session_id, now))
        if info is None:
            raise SessionNotFound(session_id)
        return info

    def leave(self, session_id: str) -> None:
        """A session went to the trash: folders that chose it go back to their default one, and
        a folder whose default it is starts a fresh one (blocking: run it in a thread)."""
        self.workspaces.forget_session(session_id)
        for folder in self.workspaces.folders:
            if self.workspaces.active_session(folder) == session_id:
                self.workspaces.set_active(folder, fresh_session_id(folder))

    def forget(self, session_id: str) -> None:
        """A session was purged: nothing refers to it any more (blocking)."""
        if self.store.overlay is not None:
            self.store.overlay.forget(session_id)
        self.workspaces.forget_session(session_id)

    async def save(self, ref: SessionRef) -> Session:
        """Write the session's in-memory history over the stored one."""
        if ref.id is None:
            raise SessionIdRequired(
                "saving a session (no workspace folder is open and no sessionId was given)"
            )
        if self.store.overlay is not None and self.store.overlay.holds(ref.id):
            return await self.store.overlay.commit(ref.id)
        session, _ = await self.current(ref)
        # Conditional: a turn another process stored since the load is not written over.
        await self.store.backend.save(session, expected_messages=len(session.messages))
        return session

    async def load(self, ref: SessionRef) -> Session:
        """Replace the in-memory history with the stored one."""
        if ref.id is None:
            raise SessionIdRequired(
                "loading a session (no workspace folder is open and no sessionId was given)"
            )
        if self.store.overlay is not None:
            self.store.overlay.inner = self.store.backend
            await self.store.overlay.reload(ref.id)
        session = await self.stored(ref.id)
        if session is None:
            raise SessionNotFound(ref.id)
        return session


def _belongs(info: SessionInfo, folders: set[str], projects: set[str]) -> bool:
    """Whether a session was made in one of ``folders`` or belongs to one of their ``projects``."""
    if info.meta.project is not None and info.meta.project in projects:
        return True
    return bool(info.workspace_uri and folder_key(info.workspace_uri) in folders)
