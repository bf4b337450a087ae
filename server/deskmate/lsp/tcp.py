"""The TCP transport, guarded: loopback only unless asked, and a token checked before anything is served.

Over stdio only the editor that started the daemon can talk to it. A TCP port is
open to every local process, and an unguarded one would let any of them set
``baseUrl`` to its own server and receive the user's API key. So the first
message on a connection must be ``initialize`` carrying the daemon's token in
``initializationOptions.token``; anything else is answered with an error and the
connection closed before pygls sees a byte of it. One client is served at a time.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from pygls.io_ import run_async

from ..memory.atomic import ensure_private_dir, replace_atomically

log = logging.getLogger(__name__)

TOKEN_ENV = "DESKMATE_LSP_TOKEN"
TOKEN_FILE_NAME = "lsp-token"
TOKEN_OPTION = "token"
MIN_TOKEN_LENGTH = 16
UNAUTHORIZED = -32001  # JSON-RPC's server-defined range: "not authorised"
FIRST_MESSAGE_LIMIT = 1 << 20  # bytes; an initialize is a few KiB
AUTH_TIMEOUT_SECONDS = 10.0


class TcpSetupError(Exception):
    """The TCP transport cannot start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise TcpSetupError(
            f"--tcp {host}: deskmate listens on loopback addresses only (127.0.0.1, ::1, localhost), "
            "so other machines cannot reach it. Add --allow-remote to listen on other addresses "
            "(clients still need the token)."
        )


def daemon_token(token_file: Path) -> tuple[str, Path | None]:
    """The token clients must send: ``$DESKMATE_LSP_TOKEN``, else a fresh one written to ``token_file``.

    Returns the token and the file it was written to (None when it came from the environment).
    """
    given = os.environ.get(TOKEN_ENV)
    if given is not None:
        if len(given) < MIN_TOKEN_LENGTH:
            raise TcpSetupError(f"${TOKEN_ENV} must be at least {MIN_TOKEN_LENGTH} characters long.")
        return given, None
    token = secrets.token_urlsafe(32)
    ensure_private_dir(token_file.parent)
    replace_atomically(token_file, token.encode() + b"\n")  # mode 0600, never a symlink's target
    return token, token_file


def _error_frame(msg_id: Any, message: str) -> bytes:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": msg_id, "error": {"code": UNAUTHORIZED, "message": message}}
    ).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One framed message's body; raises ValueError for anything that is not one."""
    length = None
    while True:
        line = await reader.readline()
        if not line:
            raise ValueError("the connection closed before a message arrived")
        if len(line) > 1024:
            raise ValueError("a header line is too long")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip()) if value.strip().isdigit() else None
    if length is None or length > FIRST_MESSAGE_LIMIT:
        raise ValueError("the first message has no usable Content-Length")
    return await reader.readexactly(length)


def _authenticate(body: bytes, token: str) -> tuple[dict[str, Any] | None, Any, str]:
    """The initialize message without its token, or None with the request id and why it was refused."""
    try:
        message = json.loads(body)
    except ValueError:
        return None, None, "the first message is not JSON"
    if not isinstance(message, dict):
        return None, None, "the first message is not a JSON-RPC request"
    msg_id = message.get("id")
    if message.get("method") != "initialize":
        return None, msg_id, "the first message must be initialize"
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get(TOKEN_OPTION) if isinstance(options, dict) else None
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
        return None, msg_id, "initializationOptions.token is missing or wrong"
    del options[TOKEN_OPTION]  # a credential, not a setting: never logged or merged
    return message, msg_id, ""


def serve_tcp(server: Any, host: str, port: int, token: str) -> None:
    """Serve ``server`` (a pygls LanguageServer) to one authenticated TCP client at a time.

    Returns when that client's session ends (exit, or the connection closing).
    """
    stop_event = server._stop_event = threading.Event()
    serving = asyncio.Event()  # set while an authenticated client is connected
    done: asyncio.Future[None] | None = None

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            body = await asyncio.wait_for(_read_frame(reader), AUTH_TIMEOUT_SECONDS)
            message, msg_id, why = _authenticate(body, token)
        except (ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            message, msg_id, why = None, None, str(exc) or "no initialize within 10 s"
        if message is not None and serving.is_set():
            message, why = None, "this daemon already serves a client"
        if message is None:
            log.warning("Refused a TCP client %s: %s", peer, why)
            writer.write(
                _error_frame(msg_id, f"deskmate refused the connection: {why} (see docs/security.md).")
            )
            await _close(writer)
            return
        serving.set()
        protocol = server.protocol
        protocol.set_writer(writer)
        try:
            protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))
            await run_async(
                stop_event=stop_event,
                reader=reader,
                protocol=protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        finally:
            if done is not None and not done.done():
                done.set_result(None)

    async def main() -> None:
        nonlocal done
        done = asyncio.get_running_loop().create_future()
        listener = await asyncio.start_server(connection, host, port)
        server._server = listener
        where = ", ".join(str(sock.getsockname()[:2]) for sock in listener.sockets)
        log.info("Listening on %s; clients must send the token in initializationOptions.token", where)
        async with listener:
            await done

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass
