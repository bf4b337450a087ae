"""Which session each workspace folder uses, remembered across restarts."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..memory.atomic import FILE_MODE, ensure_private_dir, replace_atomically
from ..memory.locking import exclusive_lock

log = logging.getLogger(__name__)

GLOBAL_SESSION_ID = "global"
STATE_FILE = "workspaces.json"
# What marks a project's root folder, for the terminal and the Neovim plugin alike
# (clients/neovim/lua/deskmate/config.lua keeps the same list; a test holds them equal).
ROOT_MARKERS = (".git", ".hg", ".svn", ".deskmate")


def project_root(start: Path) -> Path:
    """The project folder an editor would open: the nearest ancestor with a VCS or .deskmate marker."""
    start = start.absolute()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return start


def folder_key(uri: str) -> str:
    """A workspace folder's URI as deskmate keys it: without a trailing slash."""
    return uri.rstrip("/")


def uri_to_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def path_to_uri(path: Path) -> str:
    return path.absolute().as_uri()


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return (slug or "workspace")[:60]


def default_session_id(folder_uri: str) -> str:
    """A stable, readable id for a folder: its name plus 8 hex of a hash of its absolute path."""
    path = uri_to_path(folder_uri)
    key = str(path) if path else folder_uri
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    name = path.name if path else urlparse(folder_uri).path.rstrip("/").rsplit("/", 1)[-1]
    return f"{_slug(name)}-{digest}"


def fresh_session_id(folder_uri: str | None) -> str:
    """A new id, e.g. ``myproject-20261124-0453-1a2b``."""
    base = default_session_id(folder_uri).rsplit("-", 1)[0] if folder_uri else "session"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{base}-{stamp}-{secrets.token_hex(2)}"


class Workspaces:
    """The open workspace folders and each folder's active session.

    Choices made with newSession/switchSession are kept in ``<data_dir>/workspaces.json``
    so they survive restarts and are shared by every daemon on the machine.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.folders: list[str] = []

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def set_folders(self, uris: list[str]) -> None:
        self.folders = list(dict.fromkeys(map(folder_key, uris)))

    def add_folder(self, uri: str) -> None:
        self.set_folders(self.folders + [uri])

    def remove_folder(self, uri: str) -> None:
        self.set_folders([f for f in self.folders if f != folder_key(uri)])

    def folder_of(self, uri: str) -> str | None:
        """The innermost open folder containing ``uri``, or None."""
        target = uri_to_path(uri)
        best: tuple[int, str] | None = None
        for folder in self.folders:
            folder_path = uri_to_path(folder)
            if target is not None and folder_path is not None:
                inside = target == folder_path or folder_path in target.parents
            else:
                inside = folder_key(uri) == folder or uri.startswith(folder + "/")
            if inside and (best is None or len(folder) > best[0]):
                best = (len(folder), folder)
        return best[1] if best else None

    # -- active sessions ------------------------------------------------------

    def _read_state(self) -> dict[str, str]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning(
                "Ignoring unreadable %s (%s); folders use their default sessions", self.state_path, exc
            )
            return {}
        active = data.get("active") if isinstance(data, dict) else None
        return {k: v for k, v in active.items() if isinstance(v, str)} if isinstance(active, dict) else {}

    def _update_state(self, change) -> None:
        ensure_private_dir(self.data_dir)
        with exclusive_lock(str(self.data_dir / f".{STATE_FILE}.lock"), timeout=30, mode=FILE_MODE):
            active = self._read_state()
            change(active)
            data = json.dumps({"version": 1, "active": active}, indent=2, sort_keys=True) + "\n"
            replace_atomically(self.state_path, data.encode())

    def chosen(self) -> dict[str, str]:
        """Each folder's active session where one was chosen (the others use their default)."""
        return self._read_state()

    def active_session(self, folder_uri: str) -> str:
        return self._read_state().get(folder_uri) or default_session_id(folder_uri)

    def set_active(self, folder_uri: str, session_id: str) -> None:
        def change(active: dict[str, str]) -> None:
            if session_id == default_session_id(folder_uri):
                active.pop(folder_uri, None)
            else:
                active[folder_uri] = session_id

        self._update_state(change)

    def forget_session(self, session_id: str) -> list[str]:
        """Folders whose active session was ``session_id`` go back to their default; returns them."""
        reset: list[str] = []

        def change(active: dict[str, str]) -> None:
            for folder, chosen in list(active.items()):
                if chosen == session_id:
                    del active[folder]
                    reset.append(folder)

        if self.state_path.exists():
            self._update_state(change)
        return reset
