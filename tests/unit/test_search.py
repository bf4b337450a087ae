"""Search in-process on the file store: ranking, phrases, Unicode, filters, and the index as
derived data (deleted or damaged, it is rebuilt; a deleted session leaves nothing)."""

from __future__ import annotations

import pytest

from deskmate.engine import InvalidArgument
from deskmate.engine.search import SearchRequest
from deskmate.memory.search_index import match_expression

from .test_handlers import wire  # noqa: F401  (the in-process server fixture)


async def ask_in_new_session(engine, title: str, *questions: str) -> str:
    session = await engine.sessions.new(title=title)
    ref = engine.sessions.resolve()
    for question in questions:
        await engine.asks.ask(question, ref=ref)
    return session.id


def found(results) -> list[tuple[str, str | None]]:
    return [(hit.session_id, hit.role) for hit in results.results]


async def test_search_finds_the_message_ranks_and_highlights(engine):
    parser = await ask_in_new_session(
        engine, "Parser", "How does parse_args handle --verbose?", "And parse_args with parse_args defaults?"
    )
    other = await ask_in_new_session(engine, "Other", "Where is the config loaded?")
    results = await engine.search.search(SearchRequest("PARSE_ARGS"))
    assert results.total >= 2 and {hit.session_id for hit in results.results} == {parser}
    best = results.results[0]
    assert best.role == "user" and "**parse_args**" in best.snippet and best.title == "Parser"
    assert "defaults" in best.snippet  # the message that says it twice ranks first
    stored = await engine.sessions.stored(parser)
    assert best.message_id in {m.id for m in stored.messages}
    assert found(await engine.search.search(SearchRequest("config loaded")))[0] == (other, "user")


async def test_phrases_words_prefixes_and_unicode(engine):
    await ask_in_new_session(
        engine, "Unicode", "Die Größe der Datei ist falsch", "Почему функция падает?", "the quick brown fox"
    )
    hits = lambda q: engine.search.search(SearchRequest(q))  # noqa: E731
    assert (await hits('"quick brown"')).total == 1
    assert (await hits('"brown quick"')).total == 0
    assert (await hits("fox quick")).total == 1
    assert (await hits("GRÖSSE")).total == 0  # ß is not ss: folding is per character
    assert (await hits("größe")).total == 1 and (await hits("GRÖßE")).total == 1
    assert (await hits("ФУНКЦИЯ")).total == 1
    assert (await hits("datei falsch")).total == 1
    assert (await hits("fun")).total == 0 and (await hits("функ")).total == 1  # the last word is a prefix
    assert match_expression('a" OR b NEAR(c)') == '"a" AND "OR" AND "b" AND "NEAR" AND "c"*'


async def test_filters_by_role_tag_date_and_project(engine, tmp_path):
    tagged = await ask_in_new_session(engine, "Tagged", "zebra stripes")
    plain = await ask_in_new_session(engine, "Plain", "zebra crossing")
    await engine.labels.tag(tagged, ["Animals"], [])
    assert found(await engine.search.search(SearchRequest("zebra", tag="animals"))) == [(tagged, "user")]
    assert {s for s, _ in found(await engine.search.search(SearchRequest("zebra", role="user")))} == {
        tagged,
        plain,
    }
    assert (await engine.search.search(SearchRequest("zebra", role="assistant"))).total == 0
    assert (await engine.search.search(SearchRequest("fake answer", role="assistant"))).total == 2
    assert (await engine.search.search(SearchRequest("zebra", after="2999-01-01"))).total == 0
    assert (await engine.search.search(SearchRequest("zebra", before="2000-01-01"))).total == 0
    elsewhere = (tmp_path / "elsewhere").as_uri()
    assert (await engine.search.search(SearchRequest("zebra", workspace_uri=elsewhere))).total == 0
    assert (await engine.search.search(SearchRequest("zebra", workspace_uri=elsewhere, all=True))).total == 2


async def test_titles_match_too_and_renames_are_searchable(engine):
    session_id = await ask_in_new_session(engine, "Untitled", "hello there")
    await engine.labels.rename(session_id, "Kubernetes networking")
    results = await engine.search.search(SearchRequest("kubernetes"))
    assert [(h.session_id, h.message_id, h.snippet) for h in results.results] == [
        (session_id, None, "**Kubernetes** networking")
    ]


async def test_a_message_in_a_session_whose_title_matches_ranks_first(engine):
    titled = await ask_in_new_session(engine, "Widget design", "where is the widget drawn?")
    later = await ask_in_new_session(engine, "Other", "where is the widget drawn?")
    results = await engine.search.search(SearchRequest("widget"))
    # The same words rank alike, and a tie goes to the most recent (``later``): the title's
    # bonus puts the titled session's message first.
    messages = [(hit.session_id, hit.role) for hit in results.results if hit.message_id is not None]
    assert messages[:2] == [(titled, "user"), (later, "user")]
    await engine.labels.rename(titled, "Untitled")
    results = await engine.search.search(SearchRequest("widget"))
    assert [(hit.session_id, hit.role) for hit in results.results][:2] == [(later, "user"), (titled, "user")]


async def test_a_deleted_session_leaves_no_results(engine):
    gone = await ask_in_new_session(engine, "Gone", "ephemeral words")
    assert (await engine.search.search(SearchRequest("ephemeral"))).total == 1
    await engine.delete_session(gone)
    assert (await engine.search.search(SearchRequest("ephemeral"))).total == 0


async def test_a_session_in_the_trash_is_not_found_until_it_is_restored(engine):
    trashed = await ask_in_new_session(engine, "Trashed", "transient words")
    await engine.delete_session(trashed)  # to the trash
    assert (await engine.search.search(SearchRequest("transient", all=True))).total == 0
    await engine.restore_session(trashed)
    found = await engine.search.search(SearchRequest("transient", all=True))
    assert [hit.session_id for hit in found.results] == [trashed]


async def test_an_index_deleted_or_damaged_is_rebuilt_from_the_sessions(tmp_path, model, project):
    from deskmate.engine import Assistant, Settings

    def factory(settings):
        model.settings = settings
        return model

    def assistant():
        made = Assistant(Settings(data_dir=str(tmp_path / "data")), model_factory=factory)
        made.sessions.workspaces.set_folders([project.as_uri()])
        return made

    first = assistant()
    session_id = await ask_in_new_session(first, "Keep", "durable words")
    assert (await first.search.search(SearchRequest("durable"))).total == 1
    await first.close()
    index = tmp_path / "data" / "search" / "files.sqlite3"
    for damage in (lambda: index.unlink(), lambda: index.write_bytes(b"not a database" * 100)):
        damage()
        for suffix in ("-wal", "-shm"):
            (tmp_path / "data" / "search" / f"files.sqlite3{suffix}").unlink(missing_ok=True)
        again = assistant()
        progress = []
        again.store.index_progress = lambda done, total, seen=progress: seen.append((done, total))
        results = await again.search.search(SearchRequest("durable"))
        assert [h.session_id for h in results.results] == [session_id] and results.total == 1
        assert progress[-1] == (1, 1)
        await again.close()


async def test_bad_queries_are_refused(engine):
    for request, field in (
        (SearchRequest("   "), "query"),
        (SearchRequest("!!! ---"), "query"),
        (SearchRequest("x", limit=0), "limit"),
    ):
        with pytest.raises(InvalidArgument, match=field):
            await engine.search.search(request)


async def test_the_command_answers_and_refuses(wire):  # noqa: F811
    await wire.command("deskmate.ask", {"question": "where is the needle?"})
    reply = await wire.command("deskmate.searchSessions", {"query": "needle"})
    result = reply["result"]
    assert result["total"] == 1 and set(result["results"][0]) == {
        "sessionId",
        "title",
        "messageId",
        "role",
        "timestamp",
        "snippet",
    }
    for arguments, fragment in (
        ({}, '"query" is required'),
        ({"query": "x", "limit": 500}, '"limit"'),
        ({"query": "x", "role": "robot"}, '"role"'),
        ({"query": "x", "after": "yesterday"}, '"after"'),
        ({"query": "..."}, '"query"'),
    ):
        reply = await wire.command("deskmate.searchSessions", arguments)
        assert reply["error"]["code"] == -32602 and fragment in reply["error"]["message"], reply
