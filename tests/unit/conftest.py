"""The fast tier: the engine and the LSP handlers in-process, with a fake model and real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskmate.engine import Assistant, Settings

from .fakes import FakeModel


@pytest.fixture
def model() -> FakeModel:
    return FakeModel(Settings())


@pytest.fixture
async def engine(tmp_path: Path, model: FakeModel, project: Path):
    """An Assistant on a real file store under tmp_path, one workspace folder, the fake model."""
    warnings: list[str] = []

    def factory(settings: Settings) -> FakeModel:
        model.settings = settings
        return model

    assistant = Assistant(
        # Automatic titles and compaction are tested on their own (test_titles.py,
        # test_compaction.py); elsewhere titles stay put and no summary is made.
        Settings(data_dir=str(tmp_path / "data"), auto_title=False, auto_compact=False),
        warn=warnings.append,
        model_factory=factory,
    )
    assistant.warnings = warnings  # type: ignore[attr-defined]
    assistant.sessions.workspaces.set_folders([project.as_uri()])
    yield assistant
    await assistant.close()
