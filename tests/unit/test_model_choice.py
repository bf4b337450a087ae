"""A folder's chosen model: kept in <data_dir>/models.json, per folder, over the model setting."""

from __future__ import annotations

from deskmate.engine.model_choice import WorkspaceModels, for_folder
from deskmate.engine.settings import Settings


def test_a_choice_is_per_folder_and_forgotten_with_none(tmp_path):
    models = WorkspaceModels(tmp_path)
    assert models.get("file:///a") is None
    models.set("file:///a", "qwen")
    models.set("file:///b", "llama")
    assert (models.get("file:///a"), WorkspaceModels(tmp_path).get("file:///b")) == ("qwen", "llama")
    models.set("file:///a", None)
    assert models.get("file:///a") is None and models.get("file:///b") == "llama"


def test_the_settings_for_a_folder_carry_its_model_only(tmp_path):
    settings = Settings(model="test-model", temperature=0.3)
    WorkspaceModels(tmp_path).set("file:///a", "qwen")
    chosen = for_folder(settings, tmp_path, "file:///a")
    assert (chosen.model, chosen.temperature) == ("qwen", 0.3)
    assert for_folder(settings, tmp_path, "file:///b") is settings
    assert for_folder(settings, tmp_path, None) is settings


def test_an_unreadable_file_means_no_choice(tmp_path):
    (tmp_path / "models.json").write_text("{not json")
    assert WorkspaceModels(tmp_path).get("file:///a") is None
