"""What a folder takes into its project the first time a daemon (or the CLI) uses it.

- Sessions made in the folder before projects were known (no ``project`` in their metadata,
  the folder as their workspace) are stamped with its project, so the project still finds
  them once the folder is moved or cloned elsewhere. Nothing is renamed: session ids and the
  folder's entry in ``workspaces.json`` stay as they are.
- A folder that has no active session of its own yet, in a project whose earlier folder is
  gone (the project was moved or renamed, or deleted and cloned again), takes over that
  folder's active session, unless a folder that still exists uses it: the conversation goes
  on where it was, and two clones side by side each keep their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from ..memory import SessionInfo
from ..memory.backend import MetaChange
from .trash import in_trash
from .workspaces import default_session_id, folder_key, uri_to_path


def stamp_project(project: str) -> MetaChange:
    """The change that puts a session in ``project``; one that has a project keeps it."""

    def change(info: SessionInfo):
        if info.meta.project is not None:
            return info.title, info.meta
        return info.title, replace(info.meta.copy(), project=project)

    return change


def unstamped_in(infos: Iterable[SessionInfo], folder: str) -> list[str]:
    """The sessions made in ``folder`` that belong to no project yet."""
    return [
        info.id
        for info in infos
        if info.meta.project is None and info.workspace_uri and folder_key(info.workspace_uri) == folder
    ]


def folder_exists(uri: str) -> bool:
    """Whether a workspace folder is still there (a folder that is no path counts as there)."""
    path = uri_to_path(uri)
    return path is None or path.exists()


def inherited_session(
    infos: Sequence[SessionInfo],
    folder: str,
    keys: Iterable[str],
    chosen: dict[str, str],
    exists: Callable[[str], bool] = folder_exists,
) -> tuple[str, str] | None:
    """The session ``folder`` takes over, and the vanished folder it was active in; None when
    the folder has an active session of its own (chosen, or its default one stored) or there
    is nothing to take over. ``infos``: the project's sessions and the folder's; ``chosen``:
    the active sessions workspaces.json names."""
    if folder in chosen or any(info.id == default_session_id(folder) for info in infos):
        return None
    keys = set(keys)
    usable = {info.id: info for info in infos if not in_trash(info)}
    in_use = {session_id for other, session_id in chosen.items() if other != folder and exists(other)}
    latest: dict[str, str] = {}  # each vanished folder: the last time one of its project's sessions changed
    for info in usable.values():
        if info.meta.project in keys and info.workspace_uri:
            place = folder_key(info.workspace_uri)
            if place != folder and info.updated_at > latest.get(place, ""):
                latest[place] = info.updated_at
    for place in sorted(latest, key=latest.__getitem__, reverse=True):
        if exists(place):
            continue
        session_id = chosen.get(place) or default_session_id(place)  # what was active there
        if session_id in usable and session_id not in in_use and usable[session_id].meta.project in keys:
            return session_id, place
    return None
