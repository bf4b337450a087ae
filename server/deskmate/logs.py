"""Logging for the daemon and the CLI: secrets masked in every record, tracebacks only when asked.

Libraries log what they are given (pygls logs whole ``initialize`` params at INFO,
drivers put connection strings in their errors), so masking happens on the
handlers, where every record passes whatever logger made it: known secret values
(API keys, tokens, passwords from storage URLs) and anything shaped like one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from urllib.parse import unquote, urlsplit

from .memory.urls import redact

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
# Environment variables whose values are secrets wherever they show up.
SECRET_ENV = (
    "OPENAI_API_KEY",
    "DESKMATE_LSP_TOKEN",
    "REDIS_PASSWORD",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DESKMATE_ENCRYPTION_KEY",  # one key or several, comma-separated: each masked below too
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# "apiKey": "v", 'api_key': 'v', token=v, Authorization: Bearer v, password=v ...
_NAMED = re.compile(
    r"(?i)((?:[\"']?[\w-]*(?:api[_-]?key|token|password|passwd|secret|authorization)[\w-]*[\"']?)"
    r"\s*[:=]\s*(?:bearer\s+)?[\"']?)([^\"'\s,;}&)]+)"
)
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]+)")


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log record from now on."""
    global _pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        longest_first = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(map(re.escape, longest_first)))


def register_url_secrets(url: str | None) -> None:
    """Mask the password of a storage URL (as written and decoded) and its secret-looking parameters."""
    if not url or "://" not in url:
        return
    login = url.split("://", 1)[1].rpartition("@")[0]
    password = login.partition(":")[2]
    register_secret(password)
    register_secret(unquote(password))
    try:
        query = urlsplit(url).query
    except ValueError:
        return
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if re.search(r"(?i)password|secret|token|key", name):
            register_secret(value)
            register_secret(unquote(value))


def register_environment_secrets() -> None:
    for name in SECRET_ENV:
        value = os.environ.get(name)
        register_secret(value)
        for part in (value or "").split(",") if "," in (value or "") else ():
            register_secret(part.strip())


def mask(text: str) -> str:
    """``text`` with every registered secret and everything shaped like a secret replaced by ``***``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL.sub(lambda match: redact(match.group(0)), text)
    text = _BEARER.sub(lambda match: match.group(1) + MASK, text)
    return _NAMED.sub(lambda match: match.group(1) + MASK, text)


class SecretMasker(logging.Filter):
    """Rewrites each record with its secrets masked; drops its traceback unless ``tracebacks``.

    Without tracebacks, an exception still shows as one line: its type and message.
    """

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            if self.tracebacks:
                record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            else:
                message += f" ({type(error).__name__}: {error})"
                record.exc_text = None
            record.exc_info = None
        elif record.exc_text and not self.tracebacks:
            record.exc_text = None
        record.msg, record.args = mask(message), ()
        if record.stack_info and not self.tracebacks:
            record.stack_info = None
        return True


def configure(verbose: bool, *, daemon: bool) -> None:
    """Log to stderr: DEBUG with tracebacks when ``verbose``; else warnings (and deskmate's INFO in the daemon)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMasker(tracebacks=verbose))
    root = logging.getLogger()
    root.addHandler(handler)
    # pygls logs every message at INFO: keep libraries at WARNING unless asked for details.
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if daemon and not verbose:
        logging.getLogger("deskmate").setLevel(logging.INFO)
    register_environment_secrets()
