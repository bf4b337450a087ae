"""Fixtures shared by every test: the local model server and a way to start real daemons."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

sys.path.insert(0, str(Path(__file__).parent))
from model_server import ModelServer  # noqa: E402

DAEMON = [sys.executable, "-m", "deskmate", "lsp"]


@pytest.fixture(autouse=True)
def no_tiktoken_downloads(monkeypatch):
    """tiktoken fetches its encoding files from the internet on first use: never in tests
    (an OpenAI model's counts are then estimated, as offline; tests that count with tiktoken
    give the counter an encoding of their own)."""

    def offline(name: str):
        raise OSError(f"tests never download tiktoken's {name}")

    monkeypatch.setattr("deskmate.engine.tokens.load_encoding", offline)


@pytest.fixture
def encryption_key(monkeypatch) -> Iterator[str]:
    """A fresh encryption key in DESKMATE_ENCRYPTION_KEY for the test (its key id returned);
    the keys loaded and the encoding records are written in forgotten after it."""
    from deskmate.memory import codec, keys

    value = base64.urlsafe_b64encode(os.urandom(32)).decode()
    monkeypatch.setenv(keys.ENV_KEY, value)
    keys.forget_loaded_keys()
    yield keys.key_id(base64.urlsafe_b64decode(value))
    keys.forget_loaded_keys()
    codec.set_writing(None)


@pytest.fixture(scope="session")
def model_server() -> ModelServer:
    with ModelServer() as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def redis_url(tmp_path: Path):
    """A Redis storage URL with a key prefix of this test's own (skips without Redis; fails on CI)."""
    from memory import store_redis

    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield store_redis.url_for(namespace, tmp_path)
    store_redis.cleanup(namespace)


@pytest.fixture(params=["file", "postgres", "redis", "s3"])
def store_settings(request, tmp_path: Path):
    """A daemon's settings for each store in turn: files in the data dir, or a shared store's
    URL in a namespace of this test's own (skips without the server; fails on CI)."""
    if request.param == "file":
        yield {}
        return
    from memory.conftest import STORES

    store = STORES[request.param]
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield {"storageUrl": store.url_for(namespace, tmp_path)}
    store.cleanup(namespace)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / ".git").mkdir(parents=True)
    (folder / "main.py").write_text("def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n")
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    """The daemon's environment: no real API keys or endpoints leak in from the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DESKMATE_"))}
    env.update(extra)
    return env


@dataclass
class Daemon:
    """A real ``deskmate lsp`` process and the pytest-lsp client talking to it."""

    client: LanguageClient
    deltas: list[dict[str, Any]] = field(default_factory=list)

    async def run(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        params = types.ExecuteCommandParams(command=command, arguments=[arguments or {}])
        return _plain(await self.client.workspace_execute_command_async(params))

    async def ask(self, question: str, **arguments: Any) -> dict[str, Any]:
        return await self.run("deskmate.ask", {"question": question, **arguments})

    def deltas_of(self, ask_id: str) -> list[dict[str, Any]]:
        return [d for d in self.deltas if d["askId"] == ask_id]

    async def stop(self) -> None:
        await self.client.shutdown_session()
        await self.client.stop()


@pytest.fixture
async def start_daemon(model_server: ModelServer, data_dir: Path) -> AsyncIterator[Any]:
    """Start daemons: ``await start_daemon(folders=[...], settings={...})``; all are stopped after the test."""
    started: list[Daemon] = []

    async def start(
        folders: list[Path] | None = None,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        capabilities: str | types.ClientCapabilities = "visual-studio-code",
    ) -> Daemon:
        config = ClientServerConfig(server_command=DAEMON, server_env=clean_env(**(env or {})))
        client = await config.start()
        daemon = Daemon(client)

        @client.feature("deskmate/askDelta")
        def on_delta(params: Any) -> None:
            daemon.deltas.append(_plain(params))

        options = {
            "baseUrl": model_server.base_url,
            "model": "test-model",
            "dataDir": str(data_dir),
            "maxRetries": 0,
            "requestTimeout": 10,
            # Automatic titles race with tests that read titles; their own tests turn them on.
            "autoTitle": False,
            **(settings or {}),
        }
        folders = folders or []
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(capabilities)
                if isinstance(capabilities, str)
                else capabilities,
                initialization_options=options,
                workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in folders],
                root_uri=folders[0].as_uri() if folders else None,
            )
        )
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        try:
            await asyncio.wait_for(daemon.stop(), 10)
        except Exception:
            pass


def _plain(value: Any) -> Any:
    """pygls hands custom notifications over as attribute objects; tests want dicts."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "_asdict"):  # pygls' namedtuple objects
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return {k: _plain(v) for k, v in vars(value).items()}
