"""What deskmate.ask reads for a context: workspace files and synced documents only, capped, never
anything a client merely names (real daemon, real files, a real FIFO)."""

from __future__ import annotations

import asyncio
import os

import pytest
from pygls.exceptions import JsonRpcException

INVALID_PARAMS = -32602
LINE_1 = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}


async def refused(daemon, uri, *fragments, **context):
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(daemon.ask("what is this?", context={"uri": uri, **context}), 20)
    assert caught.value.code == INVALID_PARAMS, caught.value.message
    assert '"context.uri"' in caught.value.message
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message
    return caught.value.message


async def test_files_outside_the_workspace_are_refused(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    for path, why in (
        ("/etc/passwd", "outside every workspace folder"),
        ("/proc/self/environ", "system file"),
        ("/dev/zero", "system file"),
    ):
        await refused(daemon, f"file://{path}", why, range=LINE_1)
    assert model_server.requests == []  # nothing was sent to the model...
    session = await daemon.run("deskmate.getSession", {})
    assert session["messages"] == []  # ...nor stored


async def test_a_symlink_out_of_the_workspace_is_refused(start_daemon, project, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("SECRET=1\n")
    (project / "link.txt").symlink_to(secret)
    daemon = await start_daemon(folders=[project])
    await refused(daemon, (project / "link.txt").as_uri(), "outside every workspace folder", range=LINE_1)


async def test_a_fifo_in_the_workspace_is_refused_without_hanging(start_daemon, project):
    os.mkfifo(project / "pipe.py")
    daemon = await start_daemon(folders=[project])
    await refused(daemon, (project / "pipe.py").as_uri(), "not a regular file", range=LINE_1)
    assert (await daemon.run("deskmate.status"))["version"]  # the daemon still answers


async def test_a_workspace_file_is_read_from_disk(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    await daemon.ask("explain", context={"uri": (project / "main.py").as_uri(), "range": LINE_1})
    assert "def add(a, b):" in model_server.requests[-1]["messages"][-1]["content"]


async def test_a_big_file_is_cut_at_one_mebibyte_with_a_note(start_daemon, project, model_server):
    big = project / "big.txt"
    big.write_text(("x" * 99 + "\n") * 30_000)  # 3 MB
    daemon = await start_daemon(folders=[project])
    everything = {"start": {"line": 0, "character": 0}, "end": {"line": 40_000, "character": 0}}
    result = await daemon.ask("summarise [[tokens:2]]", context={"uri": big.as_uri(), "range": everything})
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    context = session["messages"][-2]["context"]
    assert len(context["text"]) == 1_048_576
    assert context["note"] == "only the first 1,048,576 of 3,000,000 bytes were read"
    assert context["note"] in model_server.requests[-1]["messages"][-1]["content"]


async def test_text_without_language_id_never_reads_the_file(start_daemon, project, model_server):
    os.mkfifo(project / "pipe.py")  # reading it would hang the ask
    outside = "file:///etc/passwd"
    daemon = await start_daemon(folders=[project])
    model_server.clear_requests()
    for uri in ((project / "pipe.py").as_uri(), outside):
        result = await asyncio.wait_for(
            daemon.ask("about this", context={"uri": uri, "text": "given by the editor", "range": LINE_1}), 20
        )
        prompt = model_server.requests[-1]["messages"][-1]["content"]
        assert "given by the editor" in prompt and "root:" not in prompt
        assert result["interrupted"] is False


async def test_too_long_context_text_and_question_are_refused(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    with pytest.raises(JsonRpcException) as caught:
        await daemon.ask("q", context={"uri": "file:///x.py", "text": "x" * 1_048_577})
    assert caught.value.code == INVALID_PARAMS and '"context.text" is 1,048,577 characters long' in str(
        caught.value.message
    )
    with pytest.raises(JsonRpcException) as caught:
        await daemon.ask("q" * 200_001)
    assert caught.value.code == INVALID_PARAMS and '"question" is 200,001 characters long' in str(
        caught.value.message
    )
