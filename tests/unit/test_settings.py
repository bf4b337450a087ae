"""Settings from editor JSON: camelCase keys, bad values reported and the old one kept, null unsets."""

from __future__ import annotations

import pytest

from deskmate.engine import Settings, SettingsError


def test_known_keys_are_applied_and_unknown_ones_ignored():
    settings, problems = Settings().merged({"model": "m", "maxTokens": 256, "temperature": 0.3, "shiny": 1})
    assert (settings.model, settings.max_tokens, settings.temperature, problems) == ("m", 256, 0.3, [])


def test_the_deskmate_section_is_accepted_as_well_as_a_flat_object():
    assert Settings().merged({"deskmate": {"model": "nested"}})[0].model == "nested"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"maxTokens": 0}, "'maxTokens' must be at least 1"),
        ({"maxTokens": True}, "'maxTokens' must be an integer"),
        ({"temperature": 3}, "between 0 and 2"),
        ({"autoSave": "yes"}, "true or false"),
        ({"sessionId": "CON"}, "reserved device name"),
        ({"storageUrl": "ftp://x"}, "Unknown storage URL scheme"),
        ({"model": ""}, "must not be empty"),
    ],
)
def test_a_bad_value_keeps_the_old_one_and_names_the_setting(raw, fragment):
    settings, problems = Settings(max_tokens=9).merged(raw)
    assert settings == Settings(max_tokens=9)
    assert len(problems) == 1 and fragment in problems[0]


def test_null_unsets_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("DESKMATE_MODEL", "from-env")
    settings, _ = Settings(model="chosen", max_tokens=5).merged({"model": None, "maxTokens": None})
    assert settings.model == "from-env" and settings.max_tokens is None


def test_settings_must_be_an_object():
    with pytest.raises(SettingsError, match="JSON object"):
        Settings().merged(["model"])


def test_the_api_key_is_never_in_the_repr():
    assert "sk-secret" not in repr(Settings(api_key="sk-secret"))
