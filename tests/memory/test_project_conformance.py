"""Listing and searching by project on every store (files, PostgreSQL, Redis, S3, the resilient
wrapper): a session carries its project in its metadata record, and each store's listing (its
own pages on PostgreSQL, the search index's on the others) chooses by it."""

from __future__ import annotations

import shutil

import pytest

from deskmate.engine import Assistant, Settings
from deskmate.engine.workspaces import default_session_id
from deskmate.memory.indexing import IndexedBackend
from deskmate.memory.models import Session, SessionMeta
from deskmate.memory.search_index import Filters, ListQuery
from helpers import eventually, turn

HERE, GONE = "file:///work/here", "file:///work/gone"


@pytest.fixture
async def indexed(backend, tmp_path):
    """The store as the daemon wraps it: its listing pages come from PostgreSQL itself, or from
    the search index of the other stores (once it has caught up)."""
    wrapped = IndexedBackend(backend, tmp_path / "index.sqlite3")
    yield wrapped
    await wrapped.close()


async def store_three(backend) -> None:
    elsewhere = Session(
        id="made-elsewhere",
        title="Made elsewhere",
        workspace_uri=GONE,
        meta=SessionMeta(project="git:p1"),
        messages=turn(0, tag="elsewhere"),
    )
    await backend.save(elsewhere)
    await backend.append("made-here", turn(1, tag="here"), title="Made here", workspace_uri=HERE)
    await backend.append("other-project", turn(2, tag="other"), title="Other", workspace_uri=GONE)
    await backend.update("other-project", lambda info: (info.title, SessionMeta(project="git:p2")))


async def test_a_project_is_kept_and_listed_by_every_store(indexed):
    await store_three(indexed)
    listed = {info.id: info.meta.project for info in await indexed.list()}
    assert listed == {"made-elsewhere": "git:p1", "made-here": None, "other-project": "git:p2"}
    await indexed.append("made-elsewhere", turn(3))  # an append keeps the record as it is
    assert (await indexed.load("made-elsewhere")).meta.project == "git:p1"

    query = ListQuery([HERE], (), None, None, projects=["git:p1", "path:x"])
    page = await eventually(lambda: indexed.list_page(query, 0, 10))
    assert sorted(info.id for info in page) == ["made-elsewhere", "made-here"]
    assert await indexed.list_page(ListQuery([HERE], (), None, None), 0, 10) is not None
    assert [i.id for i in await indexed.list_page(ListQuery([HERE], (), None, None), 0, 10)] == ["made-here"]
    hits, total = await indexed.search("elsewhere", Filters(folders=[HERE], projects=["git:p1"]), 10)
    assert total == 2 and {hit.session_id for hit in hits} == {"made-elsewhere"}
    hits, total = await indexed.search("other", Filters(folders=[HERE], projects=["git:p1"]), 10)
    assert total == 0


async def test_a_moved_folder_lists_its_projects_sessions_on_every_store(indexed, tmp_path):
    """The engine over each store: a folder made before projects (its sessions adopted on first
    use), then moved; the new folder lists them by identity, whole listing and pages alike."""
    old, new = tmp_path / "old", tmp_path / "new"
    (old / ".deskmate").mkdir(parents=True)
    (old / ".deskmate" / "project").write_text("acme-app\n")
    before = default_session_id(old.as_uri())  # the folder's default (active) session
    await indexed.append(before, turn(0), title="Before", workspace_uri=old.as_uri())
    await indexed.append("not-ours", turn(1), title="Not ours", workspace_uri="file:///elsewhere")

    def engine(folder) -> Assistant:
        made = Assistant(Settings(data_dir=str(tmp_path / "data")), backend=indexed, warn=lambda m: None)
        made.sessions.workspaces.set_folders([folder.as_uri()])
        engines.append(made)
        return made

    engines: list[Assistant] = []
    first = engine(old)
    assert [info.id for info, _ in await first.sessions.list(placeholders=False)] == [before]
    assert (await indexed.load(before)).meta.project == "acme-app"
    shutil.move(old, new)
    second = engine(new)
    listed = await second.sessions.list(placeholders=False)
    assert [(info.id, active) for info, active in listed] == [(before, True)]

    async def paged():
        page, more = await second.sessions.page(limit=10)
        return page if any(info.id == before for info, _ in page) else None

    page = await eventually(paged)
    assert [(info.id, active) for info, active in page] == [(before, True)]
    for made in engines:
        await made.close()
