"""The daemon's settings, defined once in engine/settings.py, are exactly the ones each client and
the protocol document name: a setting added or renamed in one place fails here until all follow."""

from __future__ import annotations

import json
import re
from pathlib import Path

from deskmate.engine.settings import MODEL_FIELDS, WIRE_NAMES, Settings

REPO = Path(__file__).resolve().parents[2]
CLIENT_ONLY = {"serverCommand"}  # how VS Code starts the daemon, not a daemon setting
SECRET_STORE = {"apiKey"}  # VS Code keeps it in SecretStorage, not in settings.json


def test_vscode_package_json_names_every_daemon_setting():
    manifest = json.loads((REPO / "clients/vscode/package.json").read_text())
    sections = manifest["contributes"]["configuration"]
    sections = sections if isinstance(sections, list) else [sections]
    names = {key.removeprefix("deskmate.") for section in sections for key in section["properties"]}
    assert names - CLIENT_ONLY == set(WIRE_NAMES) - SECRET_STORE


def test_vscode_daemon_settings_list_matches():
    source = (REPO / "clients/vscode/src/settings.ts").read_text()
    block = source[source.index("DAEMON_SETTINGS = {") : source.index("} as const")]
    assert set(re.findall(r"^\s+(\w+):", block, re.M)) == set(WIRE_NAMES) - SECRET_STORE


def test_neovim_docs_name_every_daemon_setting():
    for doc in ("clients/neovim/doc/deskmate.txt", "clients/neovim/README.md"):
        text = (REPO / doc).read_text()
        missing = [name for name in WIRE_NAMES if name not in SECRET_STORE and name not in text]
        assert not missing, f"{doc} does not mention {missing}"


def test_the_protocol_table_lists_exactly_the_daemon_settings():
    text = (REPO / "docs/protocol.md").read_text()
    table = text[text.index("## Settings") : text.index("## Sessions")]
    assert set(re.findall(r"^\| `(\w+)` \|", table, re.M)) == set(WIRE_NAMES)


def test_connection_settings_rebuild_the_model_client_and_others_do_not():
    assert set(MODEL_FIELDS) == {
        "model",
        "base_url",
        "api_key_env",
        "api_key",
        "request_timeout",
        "max_retries",
    }
    assert not Settings().model_changed(Settings(temperature=1.0, max_tokens=5))
    assert Settings().model_changed(Settings(base_url="http://127.0.0.1:1/v1"))


def test_the_neovim_plugin_marks_project_roots_as_the_daemon_does():
    from deskmate.engine.workspaces import ROOT_MARKERS

    config = (REPO / "clients/neovim/lua/deskmate/config.lua").read_text()
    markers = re.search(r"root_markers = \{([^}]*)\}", config).group(1)
    assert tuple(re.findall(r'"([^"]+)"', markers)) == ROOT_MARKERS


def test_project_root_is_the_nearest_marked_folder(tmp_path):
    from deskmate.engine.workspaces import project_root

    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "sub" / ".deskmate").mkdir(parents=True)
    (tmp_path / "repo" / "sub" / "deep").mkdir()
    assert project_root(tmp_path / "repo" / "sub" / "deep") == tmp_path / "repo" / "sub"
    assert project_root(tmp_path / "repo") == tmp_path / "repo"
    assert project_root(tmp_path) == tmp_path  # no marker: where we are
