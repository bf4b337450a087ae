"""The ``backend`` fixture runs the conformance suite once per store.

Each ``store_<kind>.py`` beside this file adds one store. It provides
``url_for(namespace, tmp_path) -> str``, a storage URL for a namespace no other
test uses (skipping or failing through ``services.require`` when its server is
missing), and ``cleanup(namespace)`` to remove what the test stored. It may
provide ``backend_for_url(url, tmp_path)`` to open the URL otherwise than
``urls.backend_for_url`` does (``store_resilient_*``: wrapped as the daemon wraps it).
"""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path

import pytest

from deskmate.memory.urls import backend_for_url

STORES = {
    path.stem.removeprefix("store_"): importlib.import_module(f"memory.{path.stem}")
    for path in sorted(Path(__file__).parent.glob("store_*.py"))
}


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture(params=sorted(STORES))
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def backend_url(store_kind, tmp_path):
    """A storage URL for a namespace of this test's own."""
    store = STORES[store_kind]
    namespace = f"t{uuid.uuid4().hex[:12]}"
    url = store.url_for(namespace, tmp_path)
    yield url
    store.cleanup(namespace)


@pytest.fixture
async def backend(store_kind, backend_url, tmp_path):
    store = STORES[store_kind]
    opened = (
        store.backend_for_url(backend_url, tmp_path)
        if hasattr(store, "backend_for_url")
        else backend_for_url(backend_url)
    )
    yield opened
    await opened.close()


@pytest.fixture
async def reopen(store_kind, backend_url, tmp_path):
    """Opens another backend on the test's store, as a second daemon would (no shared caches)."""
    store = STORES[store_kind]
    opened = []

    def open_again():
        backend = (
            store.backend_for_url(backend_url, tmp_path)
            if hasattr(store, "backend_for_url")
            else backend_for_url(backend_url)
        )
        opened.append(backend)
        return backend

    yield open_again
    for backend in opened:
        await backend.close()
