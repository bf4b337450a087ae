"""Settings delivery and the TCP transport."""

import asyncio
import contextlib
import socket
import stat
import subprocess
import sys
import time

import pytest
from lsprotocol import types

from conftest import clean_env
from helpers import command, frame, free_port, read_message


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


@contextlib.contextmanager
def tcp_daemon(tmp_path, *extra, env=None):
    """A real daemon on a TCP port of its own; yields (port, process)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmate", "lsp", "--tcp", f"127.0.0.1:{port}", *extra],
        env=clean_env(DESKMATE_DATA_DIR=str(tmp_path), **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
                break
            except ConnectionRefusedError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode()) from None
                time.sleep(0.05)
        yield port, proc
    finally:
        proc.kill()
        proc.wait()


def initialize(token=None, **params):
    options = {"token": token} if token is not None else {}
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"capabilities": {}, "initializationOptions": options, **params},
    }


def exchange(port: int, *messages: dict) -> dict:
    """Send ``messages`` on a fresh connection and return the first reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for message in messages:
            sock.sendall(frame(message))
        return read_message(sock)


def closed_by_daemon(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_tcp_serves_the_client_that_sends_the_token(tmp_path):
    with tcp_daemon(tmp_path) as (port, _):
        token_file = tmp_path / "lsp-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(frame(initialize(token)))
            reply = read_message(sock)
            assert reply["result"]["serverInfo"]["name"] == "deskmate"
            assert "deskmate.ask" in reply["result"]["capabilities"]["executeCommandProvider"]["commands"]
            # While it is served, nobody else gets in, not even with the token.
            second = exchange(port, initialize(token))
            assert (
                second["error"]["code"] == -32001 and "already serves a client" in second["error"]["message"]
            )


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (initialize(), "token is missing or wrong"),
        (initialize("x" * 43), "token is missing or wrong"),
        (
            {
                "jsonrpc": "2.0",
                "method": "workspace/didChangeConfiguration",
                "params": {"settings": {"baseUrl": "http://127.0.0.1:9/v1"}},
            },
            "first message must be initialize",
        ),
        (command(3, "deskmate.status"), "first message must be initialize"),
    ],
)
def test_tcp_refuses_clients_without_the_token(tmp_path, first, why):
    with tcp_daemon(tmp_path) as (port, proc):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(frame(first))
            # What an attacker would send next: its own model server, then a question.
            sock.sendall(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
            reply = read_message(sock)
            assert reply["error"]["code"] == -32001, reply
            assert why in reply["error"]["message"] and "docs/security.md" in reply["error"]["message"]
            assert "result" not in reply
            assert closed_by_daemon(sock)
        # The refused client changed nothing: the real one is still served afterwards.
        token = (tmp_path / "lsp-token").read_text().strip()
        assert exchange(port, initialize(token))["result"]["serverInfo"]["name"] == "deskmate"


def test_tcp_token_may_come_from_the_environment(tmp_path):
    token = "a-token-the-editor-chose-1234"
    with tcp_daemon(tmp_path, env={"DESKMATE_LSP_TOKEN": token}) as (port, _):
        assert not (tmp_path / "lsp-token").exists()
        assert "error" in exchange(port, initialize("a-token-the-editor-chose-123"))
        assert exchange(port, initialize(token))["result"]["serverInfo"]["name"] == "deskmate"


def test_tcp_listens_on_loopback_only_unless_told(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", "lsp", "--tcp", "0.0.0.0:2087"],
        env=clean_env(DESKMATE_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (
        proc.returncode == 2 and "loopback addresses only" in proc.stderr and "--allow-remote" in proc.stderr
    )
    short = subprocess.run(
        [sys.executable, "-m", "deskmate", "lsp", "--tcp", f"127.0.0.1:{free_port()}"],
        env=clean_env(DESKMATE_DATA_DIR=str(tmp_path), DESKMATE_LSP_TOKEN="short"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert short.returncode == 2 and "at least 16 characters" in short.stderr


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
