"""A keyring backend that keeps entries in a JSON file named by $DESKMATE_TEST_KEYRING_FILE.

The test machine has no OS keychain (no Secret Service on a headless server): the tests
select this backend through keyring's own plugin setting, PYTHON_KEYRING_BACKEND, so that
`deskmate keys init` and the daemon go through the keyring package exactly as with a real
keychain, and only the storage behind it differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class JsonFileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @staticmethod
    def _path() -> Path:
        return Path(os.environ["DESKMATE_TEST_KEYRING_FILE"])

    def _entries(self) -> dict[str, str]:
        path = self._path()
        return json.loads(path.read_text()) if path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._entries().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._entries()
        entries[f"{service}\0{username}"] = password
        self._path().write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self._entries()
        if entries.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path().write_text(json.dumps(entries))
