"""Bad input and model failures: clear messages, nothing lost, the daemon keeps serving."""

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from helpers import stored_messages

REQUEST_FAILED = -32803
INVALID_PARAMS = -32602


async def expect_error(call, code, *fragments):
    with pytest.raises(JsonRpcException) as caught:
        await call
    assert caught.value.code == code, caught.value.message
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({}, '"question" is required'),
        ({"question": "   "}, '"question" is required'),
        ({"question": 42}, '"question" must be a non-empty string, got int'),
        ({"question": "q", "sessionId": "../etc"}, "\"sessionId\": Invalid session id '../etc'"),
        ({"question": "q", "sessionId": "CON"}, "reserved"),
        ({"question": "q", "context": {"range": {}}}, '"context.uri" is required'),
        (
            {"question": "q", "context": {"uri": "file:///x", "range": {"start": {"line": -1}}}},
            "context.range.start",
        ),
        ({"question": "q", "askId": 7}, '"askId" must be a non-empty string'),
    ],
)
async def test_bad_ask_arguments_name_the_field(start_daemon, project, arguments, fragment):
    daemon = await start_daemon(folders=[project])
    await expect_error(daemon.run("deskmate.ask", arguments), INVALID_PARAMS, "deskmate.ask", fragment)


async def test_arguments_must_be_one_object(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    params = types.ExecuteCommandParams(command="deskmate.ask", arguments=["just a string"])
    await expect_error(
        daemon.client.workspace_execute_command_async(params), INVALID_PARAMS, "single JSON object"
    )
    await expect_error(daemon.run("deskmate.deleteSession", {}), INVALID_PARAMS, '"sessionId" is required')
    await expect_error(daemon.run("deskmate.cancel", {}), INVALID_PARAMS, '"askId" is required')


async def test_every_command_is_advertised(start_daemon):
    daemon = await start_daemon()
    # pytest-lsp keeps the initialize result on the server capabilities it negotiated
    commands = {
        "deskmate.ask",
        "deskmate.cancel",
        "deskmate.listSessions",
        "deskmate.getSession",
        "deskmate.newSession",
        "deskmate.switchSession",
        "deskmate.forkSession",
        "deskmate.deleteSession",
        "deskmate.saveSession",
        "deskmate.loadSession",
        "deskmate.exportSession",
        "deskmate.status",
    }
    for command in commands:  # each one answers (possibly with InvalidParams), none is unknown
        try:
            await daemon.run(command, {})
        except JsonRpcException as exc:
            assert "is not defined" not in exc.message


async def test_no_key_and_no_base_url_fails_at_once_saying_what_to_set(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"baseUrl": None})
    message = await expect_error(daemon.ask("hello?"), REQUEST_FAILED, "OPENAI_API_KEY", "baseUrl")
    assert "No API key" in message
    assert (await daemon.run("deskmate.getSession", {}))["messages"] == []


async def test_key_from_a_named_environment_variable(start_daemon, project, model_server):
    daemon = await start_daemon(
        folders=[project], settings={"apiKeyEnv": "MY_MODEL_KEY"}, env={"MY_MODEL_KEY": "bad-key"}
    )
    await expect_error(daemon.ask("hi"), REQUEST_FAILED, "rejected the API key", "HTTP 401", "MY_MODEL_KEY")


async def test_unknown_model(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"model": "missing-model"})
    await expect_error(
        daemon.ask("hi"),
        REQUEST_FAILED,
        "does not know the model 'missing-model'",
        "HTTP 404",
        "It serves: test-model.",
        "Set deskmate.model",
    )


async def test_a_base_url_without_v1_is_named_as_the_likely_mistake(start_daemon, project, model_server):
    root = model_server.base_url.removesuffix("/v1")
    daemon = await start_daemon(folders=[project], settings={"baseUrl": root})
    message = await expect_error(daemon.ask("hi"), REQUEST_FAILED, "HTTP 404", "likely missing /v1")
    assert f"Set deskmate.baseUrl to {root}/v1." in message and "does not know the model" not in message


@pytest.mark.parametrize(
    ("directive", "fragments"),
    [
        ("[[fail:429]]", ("rate-limiting", "HTTP 429", "after 1 retries")),
        ("[[fail:500]]", ("failed (HTTP 500)", "after 1 retries")),
        ("[[fail:503]]", ("failed (HTTP 503)",)),
    ],
)
async def test_server_errors_after_retries(start_daemon, project, model_server, directive, fragments):
    daemon = await start_daemon(folders=[project], settings={"maxRetries": 1})
    model_server.clear_requests()
    await expect_error(daemon.ask(f"{directive} please"), REQUEST_FAILED, *fragments)
    assert len(model_server.requests) == 2  # the SDK retried once
    assert (await daemon.ask("and now?"))["answer"]  # still serving


async def test_a_transient_failure_is_retried_by_the_sdk(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"maxRetries": 2})
    result = await daemon.ask("[[fail-once:500]] flaky")
    assert result["answer"].startswith("You asked: flaky")


async def test_timeout_keeps_the_question_and_marks_the_answer_interrupted(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"requestTimeout": 0.5})
    await expect_error(daemon.ask("[[hang]]"), REQUEST_FAILED, "did not answer within 0.5 s")
    session_id = (await daemon.run("deskmate.getSession", {}))["sessionId"]
    question, answer = await stored_messages(daemon, session_id)
    assert question["content"] == "[[hang]]" and answer["status"] == "interrupted"


async def test_connection_lost_mid_stream_keeps_the_partial_answer(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    await expect_error(
        daemon.ask("[[tokens:50]] [[disconnect-after:5]]", askId="dc"), REQUEST_FAILED, "model server"
    )
    shown = "".join(d["delta"] for d in daemon.deltas_of("dc"))
    assert shown == "t0 t1 t2 t3 t4 "
    session_id = daemon.deltas_of("dc")[0]["sessionId"]
    last = (await stored_messages(daemon, session_id))[-1]
    assert last == {
        **last,
        "content": shown,
        "status": "interrupted",
    }


async def test_stalled_stream_times_out(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"requestTimeout": 0.5})
    await expect_error(daemon.ask("[[tokens:50]] [[hang-after:3]]", askId="st"), REQUEST_FAILED, "0.5 s")
    session_id = daemon.deltas_of("st")[0]["sessionId"]
    assert (await stored_messages(daemon, session_id))[-1]["content"] == "t0 t1 t2 "


async def test_a_base_url_with_credentials_in_it_still_answers(start_daemon, project, model_server):
    # The SDK sends its Authorization header beside the URL's user:password (aiohttp would refuse).
    url = model_server.base_url.replace("http://", "http://deskmate:s3cret@")
    daemon = await start_daemon(folders=[project], settings={"baseUrl": url})
    assert (await daemon.ask("through a proxy that wants a login"))["answer"].startswith("You asked")


async def test_unreachable_server(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"baseUrl": "http://127.0.0.1:9/v1"})
    await expect_error(
        daemon.ask("anyone?"), REQUEST_FAILED, "Cannot reach the model server at http://127.0.0.1:9/v1"
    )


async def test_bad_setting_is_reported_and_the_old_value_kept(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project], settings={"temperature": 5, "maxRetries": "two"})
    warnings = [m.message for m in daemon.client.messages]
    assert any("'temperature' must be between 0 and 2" in w for w in warnings)
    assert any("'maxRetries' must be an integer" in w for w in warnings)
    model_server.clear_requests()
    assert (await daemon.ask("still works"))["answer"]
    assert "temperature" not in model_server.requests[-1]


async def test_daemon_never_writes_to_stdout_outside_the_protocol(tmp_path):
    import subprocess
    import sys

    from conftest import clean_env

    # An exit without initialize: whatever the daemon prints must be LSP framing, nothing else.
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", "lsp"],
        input=b"",
        capture_output=True,
        env=clean_env(DESKMATE_DATA_DIR=str(tmp_path)),
        timeout=30,
    )
    assert proc.stdout == b""


async def test_a_key_from_the_editor_is_never_echoed_and_the_fix_is_named(start_daemon, project):
    daemon = await start_daemon(folders=[project], settings={"apiKey": "bad-key"})
    message = await expect_error(daemon.ask("hi"), REQUEST_FAILED, "HTTP 401", "Set API Key")
    assert "bad-key" not in message and "***" in message
    logged = " ".join(m.message for m in daemon.client.log_messages)
    assert "bad-key" not in logged and "Traceback" not in logged


async def test_unsetting_a_setting_falls_back_to_the_environment(start_daemon, project):
    daemon = await start_daemon(
        folders=[project], settings={"model": "from-editor"}, env={"DESKMATE_MODEL": "from-env"}
    )
    assert (await daemon.run("deskmate.status", {}))["model"] == "from-editor"
    daemon.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"deskmate": {"model": None}})
    )
    import asyncio

    for _ in range(100):
        if (await daemon.run("deskmate.status", {}))["model"] == "from-env":
            break
        await asyncio.sleep(0.05)
    assert (await daemon.run("deskmate.status", {}))["model"] == "from-env"


async def test_a_bad_session_id_is_invalid_params_naming_the_field(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    commands = (
        "deskmate.getSession",
        "deskmate.switchSession",
        "deskmate.deleteSession",
        "deskmate.saveSession",
        "deskmate.loadSession",
        "deskmate.exportSession",
    )
    for command in commands:
        for bad in ("../etc", "nul.txt", "x" * 129):
            await expect_error(
                daemon.run(command, {"sessionId": bad}),
                INVALID_PARAMS,
                command,
                '"sessionId": Invalid session id',
            )


async def test_a_long_title_is_refused(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    await expect_error(
        daemon.run("deskmate.newSession", {"title": "t" * 201}),
        INVALID_PARAMS,
        '"title" is 201 characters long; the limit is 200',
    )


async def test_a_failed_answer_keeps_its_reason_and_is_not_sent_again(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    message = await expect_error(daemon.ask("[[fail:401]] first"), REQUEST_FAILED, "HTTP 401")
    await expect_error(
        daemon.ask("[[tokens:9]] [[error-after:2]]", askId="mid"),
        REQUEST_FAILED,
        "Simulated failure mid-answer",
    )
    session_id = daemon.deltas_of("mid")[0]["sessionId"]
    await daemon.stop()
    again = await start_daemon(folders=[project])  # the reason survives a restart
    messages = await stored_messages(again, session_id)
    assert [(m["role"], m["content"], m.get("status"), m.get("error")) for m in messages][1::2] == [
        ("assistant", "", "interrupted", message),
        ("assistant", "t0 t1 ", "interrupted", messages[3]["error"]),
    ]
    assert "in the middle of the answer: Simulated failure mid-answer." in messages[3]["error"]
    model_server.clear_requests()
    await again.ask("next")
    sent = [m["content"] for m in model_server.requests[-1]["messages"][1:]]
    assert sent == ["[[tokens:9]] [[error-after:2]]", "t0 t1 ", "next"]  # the empty failure left out


async def test_status_checks_the_model_server_when_asked(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    assert "modelServer" not in await daemon.run("deskmate.status")
    found = (await daemon.run("deskmate.status", {"checkModel": True}))["modelServer"]
    assert found == {"ok": True, "message": f"{model_server.base_url} answers and serves 'test-model'."}
    root = model_server.base_url.removesuffix("/v1")
    daemon.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"deskmate": {"baseUrl": root}})
    )
    for _ in range(100):  # the change applies asynchronously
        if (await daemon.run("deskmate.status"))["baseUrl"] == root:
            break
        await asyncio.sleep(0.05)
    missing = (await daemon.run("deskmate.status", {"checkModel": True}))["modelServer"]
    assert missing == {
        "ok": False,
        "message": f"{root}/models answered HTTP 404: the base URL is likely missing /v1.",
    }
