"""Choosing a backend from one URL: ``file:///path``, ``postgresql://…``, ``redis://…``, ``s3://bucket/prefix``.

Backends other than files live in optional modules with their own packages
(``pip install 'deskmate[postgres]'`` and so on); they are imported only when
their scheme is asked for, so the daemon starts as fast as ever without them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from itertools import groupby
from pathlib import Path

from .backend import MemoryBackend
from .backends.file import FileBackend
from .errors import StorageError
from .resilient import ResilientBackend

# scheme -> (module, class, pip extra, the package the module needs)
_BACKENDS = {
    "file": (".backends.file", "FileBackend", None, None),
    "postgresql": (".backends.postgres", "PostgresBackend", "postgres", "psycopg"),
    "postgres": (".backends.postgres", "PostgresBackend", "postgres", "psycopg"),
    "redis": (".backends.redis", "RedisBackend", "redis", "redis"),
    "rediss": (".backends.redis", "RedisBackend", "redis", "redis"),
    "s3": (".backends.s3", "S3Backend", "s3", "boto3"),
}


_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:(?://)?")
# A query parameter whose value is secret: password, sslpassword, passwd, pwd, secret, token, ...
_SECRET_PARAMETER = re.compile(
    r"(?i)(?<=[?&])[^=&?#]*(?:pass|pwd|secret|token|key|credential|signature)[^=&]*="
)


def redact(url: str) -> str:
    """``url`` with its password, and query parameters that look secret, replaced by ``***``.

    Never raises, however malformed ``url`` is. A password may hold unencoded '/', '?',
    '#', ':' or '@', so both readings are masked: everything from the login's first ':'
    to the last '@', and every secret-looking parameter's value up to the next '&'.
    Text that is not a URL (a plain path) is returned as it is.
    """
    start = _URL_START.match(url)
    if not start:
        return url
    hidden = [False] * len(url)
    at = url.rfind("@", start.end())
    colon = url.find(":", start.end(), at) if at >= 0 else -1
    if colon >= 0:
        hidden[colon + 1 : at] = [True] * (at - colon - 1)
    for parameter in _SECRET_PARAMETER.finditer(url, start.end()):
        end = url.find("&", parameter.end())
        end = len(url) if end < 0 else end
        hidden[parameter.end() : end] = [True] * (end - parameter.end())
    shown, position = [], 0
    for secret, run in groupby(hidden):
        length = len(list(run))
        shown.append("***" if secret else url[position : position + length])
        position += length
    return "".join(shown)


def check_url(url: str) -> str:
    """Return ``url`` stripped if its scheme is one deskmate knows; raise StorageError naming it otherwise.

    A plain path (no scheme) is accepted as a directory for the FileBackend.
    """
    url = url.strip()
    if not url:
        raise StorageError("The storage URL is empty.")
    scheme = _scheme(url)
    written_as = url.split(":", 1)[0].lower()
    if scheme == "file" and written_as in _BACKENDS and written_as != "file" and "://" not in url:
        # "redis:/host" is no directory name: read as one, its login would name a folder.
        raise StorageError(f"The storage URL {redact(url)!r} must start with {written_as}://.")
    if scheme not in _BACKENDS:
        raise StorageError(
            f"Unknown storage URL scheme {scheme!r} in {redact(url)!r}; "
            f"use one of {', '.join(s + '://' for s in _BACKENDS if s != 'postgres')}."
        )
    return url


def backend_for_url(url: str) -> MemoryBackend:
    """The backend ``url`` names. Does not connect: the first operation does.

    Raises StorageError for an unknown scheme, a malformed URL, or a backend
    whose Python package is not installed (the message says what to install).
    """
    url = check_url(url)
    scheme = _scheme(url)
    if scheme == "file" and "://" not in url:
        url = Path(url).expanduser().absolute().as_uri()
    module_name, class_name, extra, package = _BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name, __package__)
    except ModuleNotFoundError as exc:
        if package and exc.name and exc.name.split(".")[0] == package:
            raise StorageError(
                f"{scheme}:// storage needs the {package!r} package: pip install 'deskmate[{extra}]'"
            ) from None
        raise
    return getattr(module, class_name).from_url(url)


def _scheme(url: str) -> str:
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def daemon_store(
    url: str | None, data_dir: Path, *, notify: Callable[[str], None] | None = None
) -> MemoryBackend:
    """The backend a daemon uses: files under ``data_dir`` when ``url`` is None, else ``url``'s.

    A shared backend (anything but files) comes wrapped in a ResilientBackend
    whose outbox lives in ``<data_dir>/outbox``: while it is unreachable, turns
    wait there and ``notify`` hears about it.
    """
    if not url:
        return FileBackend(data_dir)
    backend = backend_for_url(url)
    if isinstance(backend, FileBackend):
        return backend
    return ResilientBackend(backend, data_dir / "outbox", name=redact(url), notify=notify)
