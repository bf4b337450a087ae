"""How a folder's project is identified (engine/projects.py), with real git in tmp dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskmate.engine.projects import identify, normalised_origin, path_key
from git_repos import git, make_repo


def test_a_repository_is_its_root_commit_wherever_it_is(tmp_path):
    root = make_repo(tmp_path / "app")
    first = identify((tmp_path / "app").as_uri())
    assert (first.id, first.source) == (f"git:{root}", "git-root-commit")
    assert first.keys == (f"git:{root}", path_key((tmp_path / "app").as_uri()))
    shutil.move(tmp_path / "app", tmp_path / "renamed")
    moved = identify((tmp_path / "renamed").as_uri())
    assert moved.id == first.id and moved.keys[-1] != first.keys[-1]  # the path key follows the path


def test_clones_worktrees_and_subfolders_share_the_project(tmp_path):
    root = make_repo(tmp_path / "app", commits=3)
    git(tmp_path, "clone", "-q", str(tmp_path / "app"), "clone")
    git(tmp_path / "app", "worktree", "add", "-q", str(tmp_path / "second"), "-b", "feature")
    (tmp_path / "app" / "sub").mkdir()
    assert (tmp_path / "second" / ".git").is_file()  # a worktree's .git is a file
    for folder in ("app", "clone", "second", "app/sub"):
        identity = identify((tmp_path / folder).as_uri())
        assert (identity.id, identity.source) == (f"git:{root}", "git-root-commit"), folder
    clone = identify((tmp_path / "clone").as_uri())
    assert clone.keys[1] == f"origin:{(tmp_path / 'app').as_posix()}"  # a local origin: its path


def test_a_shallow_clone_is_its_origin(tmp_path):
    make_repo(tmp_path / "app", commits=3)
    git(tmp_path / "app", "remote", "add", "origin", "git@GitHub.com:acme/app.git")
    git(tmp_path, "clone", "-q", "--depth", "1", (tmp_path / "app").as_uri(), "shallow")
    git(tmp_path / "shallow", "remote", "set-url", "origin", "https://user:secret@github.com/acme/app")
    shallow = identify((tmp_path / "shallow").as_uri())
    assert (shallow.id, shallow.source) == ("origin:github.com/acme/app", "git-origin")
    full = identify((tmp_path / "app").as_uri())
    assert full.source == "git-root-commit" and "origin:github.com/acme/app" in full.keys
    assert "secret" not in repr(shallow)


def test_a_repository_without_commits_or_origin_and_a_plain_folder_are_their_path(tmp_path):
    make_repo(tmp_path / "empty", commits=0)
    (tmp_path / "plain").mkdir()
    (tmp_path / "fake" / ".git").mkdir(parents=True)  # not a repository at all
    for name in ("empty", "plain", "fake"):
        uri = (tmp_path / name).as_uri()
        identity = identify(uri)
        assert (identity.id, identity.source, identity.keys) == (path_key(uri), "path", (path_key(uri),))
    assert identify("vscode-vfs://github/acme/app").source == "path"


def test_a_pin_file_pins_any_folder_and_keeps_what_git_found(tmp_path):
    root = make_repo(tmp_path / "app")
    (tmp_path / "app" / ".deskmate").mkdir()
    (tmp_path / "app" / ".deskmate" / "project").write_text("# our project\n\nacme-backend\n")
    (tmp_path / "app" / "sub").mkdir()
    pinned = identify((tmp_path / "app" / "sub").as_uri())
    assert (pinned.id, pinned.source) == ("acme-backend", "file")
    assert f"git:{root}" in pinned.keys  # sessions stamped before the pin are still the project's
    (tmp_path / "notes" / ".deskmate").mkdir(parents=True)
    (tmp_path / "notes" / ".deskmate" / "project").write_text(f"git:{root}\n")
    assert identify((tmp_path / "notes").as_uri()).id == f"git:{root}"  # joins the repository's project


@pytest.mark.parametrize(
    "text, problem",
    [
        ("two words\n", "may hold only"),
        ("# only a comment\n", "holds no id"),
        ("x" * 200, "longer than 128"),
    ],
)
def test_a_bad_pin_file_is_named_and_ignored(tmp_path, text, problem):
    (tmp_path / "app" / ".deskmate").mkdir(parents=True)
    (tmp_path / "app" / ".deskmate" / "project").write_text(text)
    identity = identify((tmp_path / "app").as_uri())
    assert identity.source == "path" and problem in identity.problem
    assert str(tmp_path / "app" / ".deskmate" / "project") in identity.problem


@pytest.mark.parametrize(
    "url, expected",
    [
        ("git@github.com:acme/app.git", "github.com/acme/app"),
        ("https://github.com/acme/app", "github.com/acme/app"),
        ("https://token@GitHub.com:443/acme/app.git/", "github.com/acme/app"),
        ("ssh://git@github.com:22/acme/app.git", "github.com/acme/app"),
        ("file:///srv/git/app.git", "/srv/git/app"),
        ("/srv/git/app.git", "/srv/git/app"),
        ("../upstream", "/work/upstream"),
        ("", None),
    ],
)
def test_every_spelling_of_a_remote_is_one_origin(url, expected):
    assert normalised_origin(url, Path("/work/app")) == expected
