"""A project's sessions in-process: found wherever its folder is, adopted from before projects
were known, each folder with its own active session (real git, real files, the fake model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deskmate.engine import Assistant, Settings
from deskmate.engine import sessions as sessions_module
from deskmate.engine.search import SearchRequest
from deskmate.engine.sessions import SessionRef
from deskmate.engine.workspaces import default_session_id
from deskmate.memory import BackendUnavailable
from git_repos import git, make_repo
from helpers import turn

from .fakes import FakeModel


@pytest.fixture
async def open_engine(tmp_path):
    """``open_engine(folder)``: an Assistant on one file store with ``folder`` open, as a daemon
    started there; all are closed after the test."""
    made: list[Assistant] = []

    def make(folder: Path, **settings) -> Assistant:
        model = FakeModel(Settings())
        assistant = Assistant(
            Settings(data_dir=str(tmp_path / "data"), auto_title=False, **settings),
            warn=lambda message: None,
            model_factory=lambda s: model,
        )
        assistant.sessions.workspaces.set_folders([folder.as_uri()])
        made.append(assistant)
        return assistant

    yield make
    for assistant in made:
        await assistant.close()


async def ask(engine: Assistant, question: str) -> str:
    ref = engine.sessions.resolve()
    await engine.asks.ask(question, ref=ref)
    return ref.id


async def listed(engine: Assistant) -> dict[str, bool]:
    return {info.id: active for info, active in await engine.sessions.list(placeholders=False)}


async def test_a_moved_project_keeps_its_sessions_and_goes_on_in_its_active_one(tmp_path, open_engine):
    make_repo(tmp_path / "app")
    first = open_engine(tmp_path / "app")
    default_id = await ask(first, "in the default session")
    chosen = await first.sessions.new((tmp_path / "app").as_uri(), "Chosen")
    await ask(first, "in the chosen one")
    assert (await first.sessions.project_of((tmp_path / "app").as_uri())).source == "git-root-commit"
    shutil.move(tmp_path / "app", tmp_path / "moved")

    after = open_engine(tmp_path / "moved")
    assert await listed(after) == {default_id: False, chosen.id: True}
    assert await ask(after, "after the move") == chosen.id
    page, more = await after.sessions.page(limit=10)
    assert {info.id for info, _ in page} == {default_id, chosen.id} and not more
    found = await after.search.search(SearchRequest("default"))  # made at the old path: searched too
    assert [hit.session_id for hit in found.results] == [default_id]


async def test_a_fresh_clone_lists_the_projects_sessions_and_keeps_its_own_active_one(tmp_path, open_engine):
    make_repo(tmp_path / "app")
    original = open_engine(tmp_path / "app")
    asked_there = await ask(original, "asked in the original")
    git(tmp_path, "clone", "-q", str(tmp_path / "app"), "clone")

    clone = open_engine(tmp_path / "clone")
    assert await listed(clone) == {asked_there: False}  # the original is still there: not taken over
    asked_here = await ask(clone, "asked in the clone")
    assert asked_here == default_session_id((tmp_path / "clone").as_uri()) != asked_there
    assert await listed(original) == {asked_there: True, asked_here: False}
    assert await listed(clone) == {asked_there: False, asked_here: True}


async def test_a_deleted_and_recloned_project_goes_on_where_it_was(tmp_path, open_engine):
    make_repo(tmp_path / "upstream")
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream"), "work")
    first = open_engine(tmp_path / "work")
    session_id = await ask(first, "before the clone was deleted")
    shutil.rmtree(tmp_path / "work")
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream"), "again")
    again = open_engine(tmp_path / "again")
    assert await listed(again) == {session_id: True}
    # Only one folder takes a vanished folder's session over: a second clone starts its own.
    git(tmp_path, "clone", "-q", str(tmp_path / "upstream"), "third")
    third = open_engine(tmp_path / "third")
    assert await listed(third) == {session_id: False}


async def test_sessions_made_before_projects_are_adopted_on_first_use(tmp_path, open_engine):
    make_repo(tmp_path / "app")
    uri = (tmp_path / "app").as_uri()
    legacy = open_engine(tmp_path / "app")
    store = legacy.store.backend
    await store.append(default_session_id(uri), turn(0), title="Old default", workspace_uri=uri)
    await store.append("old-other", turn(1), title="Old other", workspace_uri=uri)
    await store.append("elsewhere", turn(2), title="Another folder's", workspace_uri="file:///elsewhere")
    assert all(info.meta.project is None for info in await store.list())

    assert set(await listed(legacy)) == {default_session_id(uri), "old-other"}
    identity = await legacy.sessions.project_of(uri)
    projects = {info.id: info.meta.project for info in await store.list()}
    assert projects == {default_session_id(uri): identity.id, "old-other": identity.id, "elsewhere": None}
    shutil.move(tmp_path / "app", tmp_path / "moved")
    moved = open_engine(tmp_path / "moved")
    assert await listed(moved) == {default_session_id(uri): True, "old-other": False}


async def test_a_fork_and_a_new_session_belong_to_the_project(tmp_path, open_engine):
    make_repo(tmp_path / "app")
    engine = open_engine(tmp_path / "app")
    source = await ask(engine, "to fork")
    stored = await engine.sessions.stored(source)
    fork, _ = await engine.forks.fork(SessionRef(source, (tmp_path / "app").as_uri()), stored.messages[0].id)
    new = await engine.sessions.new((tmp_path / "app").as_uri())
    project = (await engine.sessions.project_of((tmp_path / "app").as_uri())).id
    for session_id in (source, fork.id, new.id):
        assert (await engine.sessions.stored(session_id)).meta.project == project


async def test_a_pinned_folder_shares_the_project_of_its_pin(tmp_path, open_engine):
    make_repo(tmp_path / "app")
    app = open_engine(tmp_path / "app")
    asked = await ask(app, "in the repository")
    project = (await app.sessions.project_of((tmp_path / "app").as_uri())).id
    (tmp_path / "docs" / ".deskmate").mkdir(parents=True)
    (tmp_path / "docs" / ".deskmate" / "project").write_text(project + "\n")
    docs = open_engine(tmp_path / "docs")
    assert await listed(docs) == {asked: False}
    assert (await docs.sessions.project_of((tmp_path / "docs").as_uri())).source == "file"


async def test_a_store_that_is_down_delays_the_adoption_and_fails_no_command(
    tmp_path, open_engine, monkeypatch
):
    make_repo(tmp_path / "app")
    uri = (tmp_path / "app").as_uri()
    engine = open_engine(tmp_path / "app")
    store = engine.store.backend
    await store.append(default_session_id(uri), turn(0), title="Old", workspace_uri=uri)

    async def down():
        raise BackendUnavailable("the test's store is down")

    store.list = down
    await engine.sessions.ready()  # logged, not raised: every command goes on
    identity = await engine.sessions.project_of(uri)
    assert identity.source == "git-root-commit"
    del store.list
    await engine.sessions.ready()
    assert (await store.load(default_session_id(uri))).meta.project is None  # not before the retry is due
    monkeypatch.setattr(sessions_module, "ADOPT_RETRY", 0.0)
    store.list = down
    engine.sessions.moved()  # a new store: adopted afresh, and it is down again
    await engine.sessions.ready()
    del store.list
    await engine.sessions.ready()
    assert (await store.load(default_session_id(uri))).meta.project == identity.id


async def test_a_listing_while_the_daemon_still_adopts_a_moved_folder_waits_for_it(tmp_path, open_engine):
    # The daemon starts adopting its folders as it starts; a listing asked meanwhile must not
    # see the folder's project known but its sessions not yet taken over.
    import asyncio

    make_repo(tmp_path / "app")
    first = open_engine(tmp_path / "app")
    chosen = await first.sessions.new((tmp_path / "app").as_uri(), "Chosen")
    await ask(first, "in the chosen one")
    shutil.move(tmp_path / "app", tmp_path / "moved")

    after = open_engine(tmp_path / "moved")
    store = after.store.sessions
    listing = store.list

    calls = []

    async def slow_list(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(0.3)  # the adoption's read of the store, on a slow store
        return await listing(*args, **kwargs)

    store.list = slow_list
    starting = asyncio.ensure_future(after.sessions.ready())  # as the daemon does at start
    folder = after.sessions.workspaces.folders[0]
    while folder not in after.sessions._projects:
        await asyncio.sleep(0.01)
    assert await listed(after) == {chosen.id: True}
    await starting
