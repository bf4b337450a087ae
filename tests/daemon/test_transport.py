"""Settings delivery and the TCP transport."""

import asyncio
import json
import socket
import subprocess
import sys

from lsprotocol import types

from conftest import clean_env


async def test_settings_pulled_when_the_client_sends_none(start_daemon, project, model_server):
    daemon = await start_daemon(folders=[project])
    daemon.client.set_configuration(
        {"systemPrompt": "Pulled prompt.", "model": "pulled-model"}, section="deskmate"
    )
    daemon.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    for _ in range(100):
        status = await daemon.run("deskmate.status", {})
        if status["model"] == "pulled-model":
            break
        await asyncio.sleep(0.05)
    assert status["model"] == "pulled-model"
    model_server.clear_requests()
    await daemon.ask("hi")
    assert model_server.requests[-1]["messages"][0]["content"] == "Pulled prompt."


async def test_settings_pushed_in_the_notification(start_daemon, project):
    daemon = await start_daemon(folders=[project])
    daemon.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"deskmate": {"model": "pushed-model", "autoSave": False}}
        )
    )
    for _ in range(100):
        status = await daemon.run("deskmate.status", {})
        if status["model"] == "pushed-model":
            break
        await asyncio.sleep(0.05)
    assert status["model"] == "pushed-model" and status["autoSave"] is False


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(sock: socket.socket) -> dict:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(1)
    length = int(data.split(b"Content-Length:")[1].split(b"\r\n")[0])
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return json.loads(body)


def test_tcp_transport(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmate", "lsp", "--tcp", f"127.0.0.1:{port}"],
        env=clean_env(DESKMATE_DATA_DIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode()) from None
                import time

                time.sleep(0.05)
        with sock:
            sock.sendall(
                frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
            )
            reply = read_message(sock)
            assert reply["result"]["serverInfo"]["name"] == "deskmate"
            assert "deskmate.ask" in reply["result"]["capabilities"]["executeCommandProvider"]["commands"]
    finally:
        proc.kill()
        proc.wait()


def test_bad_tcp_address_is_refused_clearly():
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", "lsp", "--tcp", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "expected HOST:PORT" in proc.stderr


async def test_stdio_flag_that_clients_add_is_accepted(tmp_path):
    from pytest_lsp import ClientServerConfig, client_capabilities

    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "deskmate", "lsp", "--stdio"],
        server_env=clean_env(DESKMATE_DATA_DIR=str(tmp_path)),
    )
    client = await config.start()
    result = await client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    assert result.server_info.name == "deskmate"
    await client.shutdown_session()
    await client.stop()
