"""Project identity through the real daemon and the CLI: a project moved, deleted and cloned
again keeps its sessions (real git in tmp dirs), and a data dir made by the release before
projects upgrades with every session found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import clean_env
from git_repos import git, make_repo
from release_data import install, release_default_id


def cli(*args, cwd, model_server, data_dir) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "deskmate", *args],
        cwd=cwd,
        env=clean_env(
            DESKMATE_BASE_URL=model_server.base_url,
            DESKMATE_MODEL="test-model",
            DESKMATE_DATA_DIR=str(data_dir),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def listing(daemon, **arguments) -> dict[str, bool]:
    result = await daemon.run("deskmate.listSessions", arguments)
    return {entry["sessionId"]: entry["active"] for entry in result["sessions"]}


async def test_a_project_moved_then_deleted_and_cloned_again_keeps_its_sessions(
    start_daemon, tmp_path, model_server, data_dir
):
    root = make_repo(tmp_path / "upstream")
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream"), "work")
    daemon = await start_daemon(folders=[tmp_path / "work"])
    status = await daemon.run("deskmate.status", {})
    assert (status["projectId"], status["projectSource"]) == (f"git:{root}", "git-root-commit")
    first = (await daemon.ask("asked before the move"))["sessionId"]
    chosen = (await daemon.run("deskmate.newSession", {"title": "Chosen"}))["sessionId"]
    await daemon.ask("asked in the chosen session")
    entries = (await daemon.run("deskmate.listSessions", {}))["sessions"]
    assert {entry["projectId"] for entry in entries} == {f"git:{root}"}
    await daemon.stop()

    shutil.move(tmp_path / "work", tmp_path / "renamed")
    moved = await start_daemon(folders=[tmp_path / "renamed"])
    assert await listing(moved) == {first: False, chosen: True}
    answer = await moved.ask("asked after the move")
    assert answer["sessionId"] == chosen and "I see 2 earlier messages" in answer["answer"]
    await moved.stop()

    shutil.rmtree(tmp_path / "renamed")
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream"), "again")
    again = await start_daemon(folders=[tmp_path / "again"])
    assert await listing(again) == {first: False, chosen: True}
    assert (await again.run("deskmate.getSession", {}))["sessionId"] == chosen
    # The terminal in that clone finds the same project and the same sessions.
    listed = cli("sessions", "list", cwd=tmp_path / "again", model_server=model_server, data_dir=data_dir)
    assert listed.splitlines()[0].split()[:2] == ["*", chosen] and first in listed
    project = cli("sessions", "project", cwd=tmp_path / "again", model_server=model_server, data_dir=data_dir)
    assert project.splitlines()[0] == f"Project git:{root} (from git-root-commit)"

    # A second worktree of the clone: the project's sessions are listed, with an active session of its own.
    git(tmp_path / "again", "worktree", "add", "-q", str(tmp_path / "worktree"), "-b", "feature")
    worktree = await start_daemon(folders=[tmp_path / "worktree"])
    assert await listing(worktree) == {
        first: False,
        chosen: False,
        release_default_id(tmp_path / "worktree"): True,  # its own, listed before its first question
    }


async def test_a_data_dir_from_the_release_upgrades_with_every_session_found(
    start_daemon, tmp_path, data_dir
):
    names = install(data_dir, tmp_path)
    before_files = sorted(path.name for path in (data_dir / "sessions").glob("*.jsonl"))
    chosen_before = json.loads((data_dir / "workspaces.json").read_text())["active"]
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    root = make_repo(alpha)
    beta.mkdir()
    alpha_sessions = {
        names[old]
        for old in (
            "alpha-f3a8c881",
            "alpha-20261206-135321-cf59",  # a fork
            "alpha-20261206-135321-f616",  # tagged and pinned
            "alpha-notes",  # asked in by id
            "alpha-20261206-135321-c7bd",  # the active one (workspaces.json)
        )
    }
    active = names["alpha-20261206-135321-c7bd"]
    trashed = names["alpha-20261206-135321-ed3f"]

    daemon = await start_daemon(folders=[alpha, beta])
    everything = await listing(daemon, all=True)
    assert set(everything) == {*alpha_sessions, names["beta-be2e60fd"], "global"}
    alpha_listing = await listing(daemon, workspaceUri=alpha.as_uri())
    assert alpha_listing == {session_id: session_id == active for session_id in alpha_sessions}
    assert await listing(daemon, workspaceUri=beta.as_uri()) == {names["beta-be2e60fd"]: True}
    trash = await daemon.run("deskmate.listSessions", {"trash": True, "workspaceUri": alpha.as_uri()})
    assert [entry["sessionId"] for entry in trash["sessions"]] == [trashed]
    session = await daemon.run("deskmate.getSession", {"workspaceUri": alpha.as_uri()})
    assert session["sessionId"] == active and len(session["messages"]) == 2
    assert (await daemon.run("deskmate.status", {}))["projectId"] == f"git:{root}"
    await daemon.stop()
    # Nothing renamed or dropped: the same session files, the same chosen sessions.
    assert sorted(path.name for path in (data_dir / "sessions").glob("*.jsonl")) == before_files
    assert json.loads((data_dir / "workspaces.json").read_text())["active"] == chosen_before

    # The adopted sessions are the project's now: moved, the project finds them all.
    shutil.move(alpha, tmp_path / "alpha-moved")
    moved = await start_daemon(folders=[tmp_path / "alpha-moved"])
    assert await listing(moved) == {session_id: session_id == active for session_id in alpha_sessions}
    trash = await moved.run("deskmate.listSessions", {"trash": True})
    assert [entry["sessionId"] for entry in trash["sessions"]] == [trashed]
    answer = await moved.ask("asked after the upgrade and the move")
    assert answer["sessionId"] == active and "I see 2 earlier messages" in answer["answer"]
