"""Encryption keys: where they come from, and their ids.

A key is 32 random bytes (AES-256), written as URL-safe base64. Its id is the first 8 hex
digits of its SHA-256: records name the id of the key that sealed them, never the key.

Sources, first found wins:
- ``DESKMATE_ENCRYPTION_KEY``: one key, or several separated by commas;
- ``DESKMATE_ENCRYPTION_KEY_FILE``: a file (mode 0600) with one key per line;
- the OS keychain through ``keyring`` (service ``deskmate``, entry ``encryption-keys``), one
  key per line, where ``deskmate keys init`` puts them.
The first key seals what is written; every key listed opens what was sealed with it, so a
rotation keeps the old key listed after the new one until ``sessions migrate --rekey`` is done.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import StorageError

ENV_KEY = "DESKMATE_ENCRYPTION_KEY"
ENV_KEY_FILE = "DESKMATE_ENCRYPTION_KEY_FILE"
KEYRING_SERVICE = "deskmate"
KEYRING_ENTRY = "encryption-keys"
KEY_BYTES = 32


class KeysUnavailable(StorageError):
    """Keys that cannot be read or used; the message says which and what to do."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeysUnavailable(
            f"{where} holds something that is not a deskmate key (32 bytes in base64, as `deskmate keys "
            "init` writes them)."
        )
    return key


@dataclass(frozen=True)
class KeyRing:
    """The keys deskmate has: ``current`` seals, all of them open. ``source`` says where they came from."""

    keys: tuple[bytes, ...]
    source: str

    @property
    def current(self) -> bytes | None:
        return self.keys[0] if self.keys else None

    @functools.cached_property
    def current_id(self) -> str | None:  # once: every sealed record names it
        return key_id(self.keys[0]) if self.keys else None

    def ids(self) -> list[str]:
        return [key_id(key) for key in self.keys]

    @functools.cached_property
    def _by_id(self) -> dict[str, bytes]:
        return {key_id(key): key for key in reversed(self.keys)}

    def by_id(self, wanted: str) -> bytes | None:
        return self._by_id.get(wanted)


def _parse(text: str, where: str) -> tuple[bytes, ...]:
    parts = [part for line in text.splitlines() for part in line.split(",")]
    return tuple(
        decode_key(part, where) for part in parts if part.strip() and not part.strip().startswith("#")
    )


def load_keys_from_file(path: Path) -> tuple[bytes, ...]:
    return _from_file(path).keys


def keychain_keys() -> tuple[bytes, ...]:
    return _from_keychain().keys


def _from_file(path: Path) -> KeyRing:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeysUnavailable(f"Cannot read the key file {path} ({ENV_KEY_FILE}): {exc.strerror}.") from None
    with os.fdopen(fd) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeysUnavailable(
                f"The key file {path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
                f"make it private: chmod 600 {path}"
            )
        return KeyRing(_parse(handle.read(), f"The key file {path}"), f"key file {path}")


def _keyring_module():
    try:
        import keyring
    except ImportError:
        raise KeysUnavailable(
            "No encryption key: set DESKMATE_ENCRYPTION_KEY or DESKMATE_ENCRYPTION_KEY_FILE, or install "
            "the keychain support (pip install 'deskmate[encryption]') and run `deskmate keys init`."
        ) from None
    return keyring


def _from_keychain() -> KeyRing:
    keyring = _keyring_module()
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEYRING_ENTRY)
    except Exception as exc:  # keyring's backends raise their own errors (no keychain, locked)
        raise KeysUnavailable(f"The OS keychain could not be read ({type(exc).__name__}: {exc}).") from None
    return KeyRing(_parse(stored or "", "The keychain entry deskmate/encryption-keys"), "the OS keychain")


def load_keys() -> KeyRing:
    """The keys the environment gives, else the keychain's (possibly none)."""
    env = os.environ.get(ENV_KEY)
    if env and env.strip():
        return KeyRing(_parse(env, ENV_KEY), ENV_KEY)
    path = os.environ.get(ENV_KEY_FILE)
    if path and path.strip():
        return _from_file(Path(path).expanduser())
    return _from_keychain()


def store_in_keychain(keys: tuple[bytes, ...]) -> None:
    keyring = _keyring_module()
    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_ENTRY, "\n".join(encode_key(key) for key in keys))
    except Exception as exc:
        raise KeysUnavailable(
            f"The OS keychain could not be written ({type(exc).__name__}: {exc})."
        ) from None


# The keys in use, loaded once on first need (a keychain may ask the user to unlock it).
_lock = threading.Lock()
_loaded: KeyRing | None = None


def keys() -> KeyRing:
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_keys()
        return _loaded


def forget_loaded_keys() -> None:
    """Read the sources again at the next need (after `keys init`, or a test changing them)."""
    global _loaded
    with _lock:
        _loaded = None
