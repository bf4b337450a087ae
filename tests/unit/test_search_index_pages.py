"""The search index's listing pages (what listSessions reads for the file, Redis and S3 stores)."""

from deskmate.memory.models import SessionInfo, SessionMeta
from deskmate.memory.search_index import ListQuery, SearchIndex


def info(session_id: str, updated_at: str, **meta) -> SessionInfo:
    return SessionInfo(
        id=session_id,
        title=session_id,
        workspace_uri="file:///p",
        created_at=updated_at,
        updated_at=updated_at,
        message_count=2,
        meta=SessionMeta(**meta),
    )


def test_a_page_never_holds_a_session_in_the_trash(tmp_path):
    """One trashed by another process stays indexed until the catch-up: pages skip it anyway,
    so a page of three holds three."""
    index = SearchIndex(tmp_path / "index.sqlite")
    try:
        for i in range(5):
            index.put_session(info(f"s{i}", f"2026-12-0{i + 1}T00:00:00Z"))
        index.put_session(info("s3", "2026-12-04T00:00:00Z", deleted_at="2026-12-06T00:00:00Z"))
        page = index.page(ListQuery(folders=["file:///p"]), 0, 3)
        assert [i.id for i in page] == ["s4", "s2", "s1"]
        assert [i.id for i in index.page(ListQuery(folders=["file:///p"]), 3, 3)] == ["s0"]
    finally:
        index.close()
