"""Which project a folder holds: an identity taken from the repository, not from the path, so
a project keeps its sessions when it is moved, renamed, cloned again or checked out twice.

In order, the first that applies:

- ``file``: a ``.deskmate/project`` file in the folder (or an ancestor up to the repository's
  top) whose first line is an id; it pins any folder to that project.
- ``git-root-commit``: the repository's root commit (the end of HEAD's first-parent chain),
  the same in every clone and worktree, wherever they are.
- ``git-origin``: the normalised ``origin`` URL, for a repository whose root commit is not
  known (a shallow clone, or one without commits yet).
- ``path``: a hash of the folder's absolute path, for a folder with none of these.

An identity also names the other keys its project's sessions may carry (the origin, the path
hash): a project pinned later, or given an origin later, still finds what it had.
Blocking (git runs as a subprocess): callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .workspaces import uri_to_path

log = logging.getLogger(__name__)

PIN_FILE = Path(".deskmate") / "project"
VCS_MARKERS = (".git", ".hg", ".svn")
GIT_TIMEOUT = 10.0  # seconds per git call; a repository slower than this is identified by its path
MAX_PROJECT_ID_LENGTH = 128
_PINNED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?([^:/]+):(?!//)(.+)")  # git@host:owner/repo.git


@dataclass(frozen=True)
class ProjectIdentity:
    """A folder's project: ``id`` (what new sessions are stamped with), ``source`` (how it was
    derived), ``keys`` (every id a session of this project may carry, ``id`` first) and a
    ``problem`` to tell the user (a pin file that could not be used)."""

    id: str
    source: str
    keys: tuple[str, ...] = field(default=())
    problem: str | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            object.__setattr__(self, "keys", (self.id,))


def path_key(folder_uri: str) -> str:
    """The fallback id: a hash of the folder's absolute path (or of its URI, for one that is no path)."""
    path = uri_to_path(folder_uri)
    key = str(path) if path is not None else folder_uri.rstrip("/")
    return "path:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def identify(folder_uri: str) -> ProjectIdentity:
    """The project of the workspace folder ``folder_uri`` (blocking: git may run)."""
    fallback = path_key(folder_uri)
    folder = uri_to_path(folder_uri)
    if folder is None:
        return ProjectIdentity(fallback, "path")
    pinned, problem = read_pin(folder)
    root, origin = git_identity(folder)
    keys = [key for key in (pinned, root and "git:" + root, origin and "origin:" + origin) if key]
    keys.append(fallback)
    keys = list(dict.fromkeys(keys))
    if pinned:
        source = "file"
    elif root:
        source = "git-root-commit"
    elif origin:
        source = "git-origin"
    else:
        source = "path"
    return ProjectIdentity(keys[0], source, tuple(keys), problem)


# -- the pin file ------------------------------------------------------------------------


def read_pin(folder: Path) -> tuple[str | None, str | None]:
    """The id a ``.deskmate/project`` file pins the folder to (the nearest, looking up to the
    repository's top), and a problem with that file to tell the user (then None)."""
    for place in (folder, *folder.parents):
        pin = place / PIN_FILE
        if pin.is_file():
            try:
                text = pin.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                return None, f"{pin} could not be read ({exc}); the project is identified without it"
            return checked_pin(text, pin)
        if any((place / marker).exists() for marker in VCS_MARKERS):
            break
    return None, None


def checked_pin(text: str, pin: Path) -> tuple[str | None, str | None]:
    """The id in a pin file's text: its first line that is neither empty nor a ``#`` comment."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_PROJECT_ID_LENGTH:
            return None, f"the id in {pin} is longer than {MAX_PROJECT_ID_LENGTH} characters; it is ignored"
        if not _PINNED_ID.fullmatch(line):
            return None, (
                f"the id in {pin} ({line[:40]!r}) may hold only letters, digits and . _ : / @ + - "
                "(starting with a letter or digit); it is ignored"
            )
        return line, None
    return (
        None,
        f"{pin} holds no id (its first line that is not a # comment names the project); it is ignored",
    )


# -- git ----------------------------------------------------------------------------------


def git_identity(folder: Path) -> tuple[str | None, str | None]:
    """The root commit of the repository ``folder`` is in (None when unknown: not a repository,
    shallow, no commits, git missing or too slow) and its normalised ``origin`` URL (or None)."""
    facts = _git(folder, "rev-parse", "--is-shallow-repository", "--show-toplevel")
    if facts is None:
        return None, None  # not a repository, or no usable git
    shallow, _, top = facts.partition("\n")
    root = None
    if shallow != "true":
        # The end of HEAD's first-parent chain: one commit, whatever other histories were merged in.
        roots = _git(folder, "rev-list", "--first-parent", "--max-parents=0", "HEAD")
        root = roots.split()[0] if roots else None
    url = _git(folder, "config", "--get", "remote.origin.url")
    origin = normalised_origin(url, Path(top) if top else folder) if url else None
    return root, origin


def _git(folder: Path, *args: str) -> str | None:
    """git's output for ``args`` in ``folder``, stripped; None when it fails or takes too long."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return None  # no git on this machine
    except subprocess.TimeoutExpired:
        log.warning(
            "git %s took over %ss in %s; the project is identified without it", args[0], GIT_TIMEOUT, folder
        )
        return None
    except OSError as exc:
        log.info("git %s failed in %s: %s", args[0], folder, exc)
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()


def normalised_origin(url: str, base: Path) -> str | None:
    """``url`` as ``host/path`` (or an absolute path, for a repository on this machine): no user,
    password, port or ``.git``, the host in lower case, so every spelling of one remote
    (``git@github.com:acme/app.git``, ``https://github.com/acme/app``) is one key."""
    url = url.strip()
    if not url:
        return None
    host = ""
    scp = _SCP_LIKE.fullmatch(url)
    if "://" in url:
        parts = urlsplit(url)
        host = "" if parts.scheme == "file" else parts.hostname or ""
        path = parts.path
    elif scp and not re.fullmatch(r"[A-Za-z]:[\\/].*", url):  # not a Windows drive path
        host, path = scp.group(1), scp.group(2)
    else:
        path = str((base / url).resolve()) if not os.path.isabs(url) else os.path.normpath(url)
    path = path.replace("\\", "/").strip("/")
    path = re.sub(r"/+", "/", path)
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    if not path:
        return None
    return f"{host.lower()}/{path}" if host else f"/{path}"
