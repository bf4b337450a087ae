"""Secrets masked in log text, and control sequences stripped from terminal output."""

from __future__ import annotations

import logging

from deskmate.logs import SecretMasker, mask, register_secret, register_url_secrets
from deskmate.terminal import strip_controls


def test_named_values_urls_and_bearer_tokens_are_masked():
    text = mask(
        "initialization_options={'apiKey': 'sk-abc123', 'storageUrl': 'redis://u:p#a/s?s@h:6379/0'} "
        'Authorization: Bearer tok-999 {"token": "zzz"} s3://b/p?secret_key=kkk&region=x'
    )
    for secret in ("sk-abc123", "p#a/s?s", "tok-999", "zzz", "kkk"):
        assert secret not in text
    assert "redis://u:***@h:6379/0" in text and "region=x" in text


def test_registered_secrets_are_masked_anywhere():
    register_secret("Vq8-registered-secret")
    register_url_secrets("postgresql://me:pa%23ss@db/x")
    assert mask("key Vq8-registered-secret and pa#ss and pa%23ss") == "key *** and *** and ***"


def test_the_filter_drops_tracebacks_unless_asked():
    try:
        raise ValueError("boom with sk-abc123 in it")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("apiKey=sk-abc123",), True)
        import sys

        record.exc_info = sys.exc_info()
    SecretMasker(tracebacks=False).filter(record)
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage().startswith("failed apiKey=*** (ValueError: boom")


def test_terminal_output_loses_control_sequences_but_keeps_text():
    raw = "a\x1b]52;c;cGF5\x07b\x1b[2Jc\x1b]0;title\x1b\\d\re\x9b1mf\tg\nh\x7f"
    assert strip_controls(raw) == "abcdef\tg\nh"


def test_encryption_keys_in_the_environment_are_masked(monkeypatch):
    from deskmate import logs

    first, second = "Kq3vZ8xW2nR7tY1uP5sL9mB4cD6fG0hJ", "Wm2nB8vC4xZ6lK0jH3gF7dS9aQ1pO5iU"
    monkeypatch.setenv("DESKMATE_ENCRYPTION_KEY", f"{first}, {second}")
    logs.register_environment_secrets()
    assert first not in logs.mask(f"key {first} and {second}") and second not in logs.mask(second)
