"""Session ids: what is allowed, so that an id can never name a path outside the store."""

from __future__ import annotations

import re

from .errors import InvalidSessionId, SessionIdRequired

MAX_SESSION_ID_LENGTH = 128
_ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Device names Windows reserves in every folder, with or without an extension
# ("con", "Nul.jsonl"): a session file named so could not be copied to Windows.
_WINDOWS_DEVICES = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)


def validate_session_id(session_id: object, operation: str = "this operation") -> str:
    """Return ``session_id`` if it is safe to use as a file name, else raise.

    Allowed: 1-128 ASCII letters, digits, '.', '_' and '-', starting with a
    letter or digit, not ending in '.', and not a device name Windows reserves
    (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``-``COM9``, ``LPT0``-``LPT9``, in
    any case, with or without an extension). That rules out separators, '..',
    absolute paths, NUL and control characters on every platform, and keeps
    every session file copyable to Windows.
    """
    if session_id is None or session_id == "":
        raise SessionIdRequired(operation)
    if not isinstance(session_id, str):
        raise InvalidSessionId(session_id, "it must be a string")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InvalidSessionId(
            session_id[:40] + "...", f"it is longer than {MAX_SESSION_ID_LENGTH} characters"
        )
    if not _ALLOWED.fullmatch(session_id):
        if "/" in session_id or "\\" in session_id:
            reason = "it contains a path separator"
        elif any(ord(ch) < 32 or ord(ch) == 127 for ch in session_id):
            reason = "it contains a control character"
        elif not session_id[0].isalnum():
            reason = "it must start with a letter or a digit"
        else:
            reason = "only letters, digits, '.', '_' and '-' are allowed"
        raise InvalidSessionId(session_id, reason)
    if session_id.endswith("."):
        raise InvalidSessionId(session_id, "it must not end with '.' (Windows drops a trailing dot)")
    if _WINDOWS_DEVICES.fullmatch(session_id):
        device = session_id.split(".", 1)[0].upper()
        raise InvalidSessionId(session_id, f"{device!r} is a reserved device name on Windows")
    return session_id
