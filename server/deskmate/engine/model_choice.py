"""The model each workspace folder uses when the user picked one (a model picker), remembered
across restarts in ``<data_dir>/models.json`` and shared by every daemon on the machine.

A folder without a choice uses the ``model`` setting. The choice changes only the model's
name: the server, key and every other setting stay as configured.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..memory.atomic import FILE_MODE, ensure_private_dir, replace_atomically
from ..memory.locking import exclusive_lock
from .settings import Settings

log = logging.getLogger(__name__)

MODELS_FILE = "models.json"
MAX_MODEL_LENGTH = 256


class WorkspaceModels:
    """Each folder's chosen model, by folder URI."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @property
    def path(self) -> Path:
        return self.data_dir / MODELS_FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("Ignoring unreadable %s (%s); folders use the model setting", self.path, exc)
            return {}
        chosen = data.get("models") if isinstance(data, dict) else None
        return (
            {k: v for k, v in chosen.items() if isinstance(v, str) and v} if isinstance(chosen, dict) else {}
        )

    def get(self, folder_uri: str | None) -> str | None:
        """The model chosen for ``folder_uri``, or None (the model setting applies)."""
        return self._read().get(folder_uri) if folder_uri else None

    def set(self, folder_uri: str, model: str | None) -> None:
        """Choose ``model`` for the folder; None forgets the choice."""
        ensure_private_dir(self.data_dir)
        with exclusive_lock(str(self.data_dir / f".{MODELS_FILE}.lock"), timeout=30, mode=FILE_MODE):
            chosen = self._read()
            if model:
                chosen[folder_uri] = model
            else:
                chosen.pop(folder_uri, None)
            data = json.dumps({"version": 1, "models": chosen}, indent=2, sort_keys=True) + "\n"
            replace_atomically(self.path, data.encode())


def for_folder(settings: Settings, data_dir: Path, folder_uri: str | None) -> Settings:
    """``settings`` with the folder's chosen model, if it has one."""
    chosen = WorkspaceModels(data_dir).get(folder_uri)
    return dataclasses.replace(settings, model=chosen) if chosen and chosen != settings.model else settings
