"""Files added to a question (``@file``, ``#buffer``, "+ add context"): deskmate.ask's ``attachments``
go to the model beside the editor's context, are stored with the question, shown by getSession
and exported, and are read only inside the workspace and within the size cap (real daemon)."""

from __future__ import annotations

import asyncio

import pytest
from pygls.exceptions import JsonRpcException

INVALID_PARAMS = -32602
LINES_1_2 = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}


async def test_an_attached_file_goes_along_whole_and_is_stored_with_the_question(
    start_daemon, project, model_server
):
    (project / "util.py").write_text("def helper():\n    return 42\n")
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    main = (project / "main.py").as_uri()
    result = await daemon.ask(
        "how do these fit together?",
        context={"uri": main, "range": LINES_1_2},
        attachments=[{"uri": (project / "util.py").as_uri()}],
    )
    prompt = model_server.requests[-1]["messages"][-1]["content"]
    assert "def add(a, b):" in prompt  # the editor's selection
    assert "def helper():\n    return 42" in prompt  # the attached file, whole
    assert prompt.index("main.py") < prompt.index("util.py")
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    context = session["messages"][-2]["context"]
    assert context["uri"] == main and context["text"] == "def add(a, b):\n"
    assert [(a["uri"], a["text"]) for a in context["attachments"]] == [
        ((project / "util.py").as_uri(), "def helper():\n    return 42\n")
    ]
    exported = await daemon.run("deskmate.exportSession", {"sessionId": result["sessionId"]})
    assert "Context from `" + str(project / "util.py") + "`" in exported["markdown"]


async def test_attachments_alone_make_the_context_and_a_repeat_goes_once(start_daemon, project, model_server):
    (project / "a.py").write_text("A = 1\n")
    (project / "b.py").write_text("B = 2\n")
    daemon = await start_daemon(folders=[project])
    a, b = (project / "a.py").as_uri(), (project / "b.py").as_uri()
    result = await daemon.ask("compare", attachments=[{"uri": a}, {"uri": b}, {"uri": a}])
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    context = session["messages"][-2]["context"]
    assert (context["uri"], context["text"]) == (a, "A = 1\n")
    assert [(x["uri"], x["text"]) for x in context["attachments"]] == [(b, "B = 2\n")]
    prompt = model_server.requests[-1]["messages"][-1]["content"]
    assert prompt.count("A = 1") == 1 and "B = 2" in prompt


async def test_an_attachment_outside_the_workspace_is_refused_by_its_index(
    start_daemon, project, model_server
):
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(
            daemon.ask(
                "what is this?",
                attachments=[{"uri": (project / "main.py").as_uri()}, {"uri": "file:///etc/passwd"}],
            ),
            20,
        )
    assert caught.value.code == INVALID_PARAMS
    assert '"attachments[1].uri"' in caught.value.message and "outside every workspace folder" in (
        caught.value.message
    )
    assert model_server.requests == []
    assert (await daemon.run("deskmate.getSession", {}))["messages"] == []


async def test_bad_attachments_are_refused_naming_the_field(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    for attachments, fragment in (
        ("main.py", '"attachments" must be a list'),
        ([{"range": LINES_1_2}], '"attachments[0].uri" is required'),
        ([{"uri": "file:///x.py"}] * 21, "the limit is 20"),
    ):
        with pytest.raises(JsonRpcException) as caught:
            await daemon.ask("q", attachments=attachments)
        assert caught.value.code == INVALID_PARAMS and fragment in caught.value.message, caught.value.message


async def test_all_context_together_is_capped_with_a_note(start_daemon, project, model_server):
    (project / "big1.txt").write_text("x" * 800_000)
    (project / "big2.txt").write_text("y" * 800_000)
    daemon = await start_daemon(folders=[project])
    result = await daemon.ask(
        "summarise [[tokens:2]]",
        attachments=[{"uri": (project / "big1.txt").as_uri()}, {"uri": (project / "big2.txt").as_uri()}],
    )
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    context = session["messages"][-2]["context"]
    second = context["attachments"][0]
    assert len(context["text"]) + len(second["text"]) == 1_048_576
    assert second["note"] == (
        "only the first 248,576 of 800,000 characters were sent (the limit for all context together)"
    )
