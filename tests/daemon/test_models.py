"""The model picker: deskmate.listModels lists what the server offers, deskmate.setModel chooses
one for the workspace (kept across restarts, per folder), asks use it, getSession names it
(real daemon, real model server)."""

from __future__ import annotations

import pytest
from pygls.exceptions import JsonRpcException

INVALID_PARAMS = -32602
REQUEST_FAILED = -32803


@pytest.fixture
def offered(model_server):
    model_server.models = ["test-model", "qwen2.5-coder-7b", "llama-3.2-3b"]
    yield model_server.models
    model_server.models = ["test-model"]


async def test_list_then_choose_a_model_for_the_workspace(
    start_daemon, project, tmp_path, offered, model_server
):
    other = tmp_path / "other"
    other.mkdir()
    daemon = await start_daemon(folders=[project, other])
    listed = await daemon.run("deskmate.listModels", {"workspaceUri": project.as_uri()})
    assert listed["models"] == [{"id": m} for m in offered]
    assert listed["current"] == listed["default"] == "test-model"

    chosen = await daemon.run(
        "deskmate.setModel", {"workspaceUri": project.as_uri(), "model": "qwen2.5-coder-7b"}
    )
    assert chosen == {"model": "qwen2.5-coder-7b", "workspaceUri": project.as_uri()}
    model_server.clear_requests()
    result = await daemon.ask("which model?", workspaceUri=project.as_uri())
    assert model_server.requests[-1]["model"] == "qwen2.5-coder-7b"
    session = await daemon.run("deskmate.getSession", {"sessionId": result["sessionId"]})
    assert session["messages"][-1]["model"] == "qwen2.5-coder-7b"
    assert (await daemon.run("deskmate.getSession", {"workspaceUri": project.as_uri()}))[
        "model"
    ] == "qwen2.5-coder-7b"
    # Another folder keeps the model setting.
    await daemon.ask("and here?", workspaceUri=other.as_uri())
    assert model_server.requests[-1]["model"] == "test-model"
    assert (await daemon.run("deskmate.listModels", {"workspaceUri": other.as_uri()}))[
        "current"
    ] == "test-model"

    # Kept across a restart; null goes back to the setting.
    await daemon.stop()
    daemon = await start_daemon(folders=[project])
    assert (await daemon.run("deskmate.listModels", {"workspaceUri": project.as_uri()}))["current"] == (
        "qwen2.5-coder-7b"
    )
    back = await daemon.run("deskmate.setModel", {"workspaceUri": project.as_uri(), "model": None})
    assert back["model"] == "test-model"


async def test_set_model_needs_a_model_and_a_folder(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    with pytest.raises(JsonRpcException) as caught:
        await daemon.run("deskmate.setModel", {"workspaceUri": project.as_uri()})
    assert caught.value.code == INVALID_PARAMS and '"model" is required' in caught.value.message
    bare = await start_daemon(folders=[])
    with pytest.raises(JsonRpcException) as caught:
        await bare.run("deskmate.setModel", {"model": "x"})
    assert caught.value.code == INVALID_PARAMS and "no workspace folder" in caught.value.message


async def test_listing_fails_with_the_reason_when_the_server_is_down(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"baseUrl": "http://127.0.0.1:9/v1"})
    with pytest.raises(JsonRpcException) as caught:
        await daemon.run("deskmate.listModels", {})
    assert caught.value.code == REQUEST_FAILED
    assert "could not list the models" in caught.value.message and "127.0.0.1:9" in caught.value.message
