"""A data dir made by deskmate 0.1.0, before project identity (tests/fixtures/release_data), for
folders at new paths: the folder URIs and the two default session ids, which the release derived
from the paths, are rewritten; every other byte is as the release wrote it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "release_data"
MADE_AT = Path("/tmp/deskmate-release-fixture")
FOLDERS = ("alpha", "beta")


def release_default_id(folder: Path) -> str:
    """The release's default session id of a folder: its name and 8 hex of its path's hash."""
    return f"{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}"


def install(data_dir: Path, root: Path) -> dict[str, str]:
    """The fixture's data dir at ``data_dir``, for folders ``root/alpha`` and ``root/beta``;
    returns each fixture session id as it is named there."""
    renamed = {release_default_id(MADE_AT / name): release_default_id(root / name) for name in FOLDERS}
    (data_dir / "sessions").mkdir(parents=True)
    names: dict[str, str] = {}
    for source in sorted((FIXTURE / "sessions").glob("*.jsonl")):
        old_id = source.stem
        new_id = renamed.get(old_id, old_id)
        names[old_id] = new_id
        (data_dir / "sessions" / f"{new_id}.jsonl").write_text(_moved(source.read_text(), root, renamed))
    (data_dir / "workspaces.json").write_text(
        _moved((FIXTURE / "workspaces.json").read_text(), root, renamed)
    )
    return names


def _moved(text: str, root: Path, renamed: dict[str, str]) -> str:
    text = text.replace(MADE_AT.as_uri(), root.as_uri())
    for old, new in renamed.items():
        text = re.sub(rf'"{re.escape(old)}"', f'"{new}"', text)
    return text
